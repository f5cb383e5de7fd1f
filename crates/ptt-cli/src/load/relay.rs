//! The relay `ptt load` starts for itself when no `--server` is given: a
//! `pttd` child process on 127.0.0.1 with a free port, a temporary data dir
//! and a directory generated for the run; plus its CPU time and peak RSS
//! from `/proc`.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the relay may take to bind and write its certificate.
const START_PATIENCE: Duration = Duration::from_secs(20);

/// A `pttd` child process, stopped (SIGTERM, then kill) on drop.
#[derive(Debug)]
pub(crate) struct OwnRelay {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its ops HTTP port (metrics).
    pub(crate) ops: SocketAddr,
    /// Its self-signed certificate, to pin.
    pub(crate) cert: PathBuf,
    /// The secrets of the generated directory (`<id> <secret>` lines).
    pub(crate) secrets: String,
    _dir: tempfile::TempDir,
}

/// Where the `pttd` binary is: next to this executable, else `$PTTD`.
fn pttd_path() -> anyhow::Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        let next_to = exe.with_file_name("pttd");
        if next_to.is_file() {
            return Ok(next_to);
        }
        // Test binaries live one level down, in target/<profile>/deps.
        if let Some(up) = exe.parent().and_then(Path::parent) {
            let candidate = up.join("pttd");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Some(path) = std::env::var_os("PTTD") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("PTTD={} is not a file", path.display());
    }
    bail!(
        "no pttd binary next to this executable and PTTD is not set: \
         build it with `cargo build -p ptt-relay --bin pttd` (add --release for a release ptt), \
         or pass --server/--ca/--secrets for a running relay"
    )
}

/// A UDP port on 127.0.0.1 nobody uses right now.
fn free_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).context("cannot find a free UDP port")?;
    Ok(socket.local_addr()?.port())
}

/// A TCP port on 127.0.0.1 nobody uses right now.
fn free_tcp_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free TCP port")?;
    Ok(listener.local_addr()?.port())
}

impl OwnRelay {
    /// Generates a directory of `terminals` in `groups`, starts `pttd` on
    /// it and waits until its certificate is written (it is bound by then).
    /// `extra` arguments are appended to pttd's command line.
    pub(crate) async fn start(
        terminals: usize,
        groups: usize,
        seed: u64,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let pttd = pttd_path()?;
        let generated = ptt_directory::generate(terminals, groups, seed)
            .context("cannot generate the load directory")?;
        let dir = tempfile::tempdir().context("cannot create a temporary data dir")?;
        let directory = dir.path().join("load-directory.toml");
        std::fs::write(&directory, &generated.toml)?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let ops = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
        let child = Command::new(&pttd)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--ops-listen")
            .arg(ops.to_string())
            .arg("--console-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data)
            .arg("--directory")
            .arg(&directory)
            .arg("--log")
            .arg("warn")
            .arg("--max-connections")
            .arg((terminals + 100).to_string())
            // Every simulated terminal comes from 127.0.0.1, which the
            // relay would treat as one site behind NAT (8 log-ins at
            // once): give that one address the whole unauthenticated
            // budget, as distinct terminals would have. Through a slow,
            // lossy `--link` the default would refuse log-ins that waited
            // out `hello-timeout`. A `--relay-arg` of it still wins.
            .env("PTTD_MAX_UNAUTHENTICATED_PER_ADDRESS", "64")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", pttd.display()))?;
        let mut relay = Self {
            child,
            addr,
            ops,
            cert: data.join("pttd-cert.pem"),
            secrets: generated.secrets,
            _dir: dir,
        };
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(status) = relay.child.try_wait()? {
                bail!("pttd exited at start-up ({status}); see its messages above");
            }
            if relay.cert.is_file() && std::fs::metadata(&relay.cert)?.len() > 0 {
                // Written just before the endpoint serves; give it a moment.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok(relay);
            }
            if Instant::now() > deadline {
                bail!("pttd did not start within {START_PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it: SIGTERM (graceful), then a kill after 5 s.
    pub(crate) async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRelay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|&ticks| ticks > 0.0)
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) of process `pid` so far.
pub fn cpu_seconds(pid: u32, ticks: f64) -> Option<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"), ticks)
}

/// CPU seconds (user + system) of the calling thread so far.
pub fn thread_cpu_seconds(ticks: f64) -> Option<f64> {
    stat_cpu_seconds("/proc/thread-self/stat", ticks)
}

/// CPU seconds of the process or thread whose `stat` file is `path`.
fn stat_cpu_seconds(path: &str, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may hold spaces: count fields
    // after the last ')'. utime and stime are fields 14 and 15 overall, so
    // the 12th and 13th after the name.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// Peak resident set size (`VmHWM`) of process `pid`, KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resident set size now (`VmRSS`) of process `pid`, KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use crate::load::relay::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid, clock_ticks()).is_some());
        assert!(peak_rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
    }
}
