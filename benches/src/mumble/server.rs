//! A local mumble-server (Debian's `mumble-server` package, binary
//! `murmurd`) started for one run on 127.0.0.1, with settings that let a
//! load generator in: many users from one address, no auto-ban, no message
//! rate limit.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The SuperUser's password on the bench's server (it only ever listens on
/// loopback and is removed after the run).
pub const SUPERUSER_PASSWORD: &str = "bench";

/// How long the server may take to listen (it makes its certificate on the
/// first start).
const START_WITHIN: Duration = Duration::from_secs(15);

/// The mumble-server binary: `MUMBLE_SERVER` if set, else Debian's.
#[must_use]
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MUMBLE_SERVER") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/sbin/murmurd",
        "/usr/bin/murmurd",
        "/usr/bin/mumble-server",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
}

/// A running mumble-server; killed, and its folder removed, when dropped.
#[derive(Debug)]
pub struct MumbleServer {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl MumbleServer {
    /// Starts `binary` for `users` users; pinned to CPU 0 with `taskset`
    /// when `pinned`.
    pub fn start(binary: &Path, users: usize, pinned: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("a folder for mumble-server")?;
        // Started as root, murmurd drops to its own user: it must be able
        // to write its database here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )?;
        let addr = free_port()?;
        let ini = dir.path().join("bench.ini");
        std::fs::write(&ini, settings(dir.path(), addr, users))?;
        let status = Command::new(binary)
            .arg("-ini")
            .arg(&ini)
            .arg("-supw")
            .arg(SUPERUSER_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {}", binary.display()))?;
        if !status.success() {
            bail!("{} -supw failed: {status}", binary.display());
        }
        let log = dir.path().join("stderr.log");
        let mut command = if pinned {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", "0"]).arg(binary);
            taskset
        } else {
            Command::new(binary)
        };
        let child = command
            .arg("-fg")
            .arg("-ini")
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { child, addr, dir };
        server.wait_listening()?;
        Ok(server)
    }

    /// Where it listens (TCP for control, UDP for voice).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (for its CPU time).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("mumble-server exited ({status}): {}", self.log_tail());
            }
            if TcpStream::connect(self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "mumble-server did not listen within {START_WITHIN:?}: {}",
            self.log_tail()
        )
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for MumbleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 (murmurd takes both).
fn free_port() -> anyhow::Result<SocketAddr> {
    for _ in 0..20 {
        let udp = UdpSocket::bind(("127.0.0.1", 0))?;
        let addr = udp.local_addr()?;
        if TcpListener::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    bail!("no port free for both TCP and UDP on 127.0.0.1")
}

/// The server's settings: loopback only, room for `users`, and none of the
/// limits meant for strangers (all the bench's users come from one address
/// and log in at once).
fn settings(dir: &Path, addr: SocketAddr, users: usize) -> String {
    format!(
        "database={db}\n\
         logfile=\n\
         host={host}\n\
         port={port}\n\
         users={users}\n\
         usersperchannel=0\n\
         autobanAttempts=0\n\
         timeout=600\n\
         bandwidth=72000\n\
         messageburst=100000\n\
         messagelimit=100000\n\
         allowping=false\n\
         registerName=\n\
         welcometext=\n\
         certrequired=false\n",
        db = dir.join("mumble.sqlite").display(),
        host = addr.ip(),
        port = addr.port(),
        users = users + 16,
    )
}
