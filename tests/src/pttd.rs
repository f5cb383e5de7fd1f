//! A relay in a process of its own, started with `pttd`'s command line, so a
//! test can kill it with SIGKILL and start it again on the same data
//! directory and port.
//!
//! By default the process is the test binary itself, re-executed with only
//! its child test selected, which runs what `pttd` runs ([`serve_child`]):
//! always the code under test, never a stale `pttd` left in the shared
//! target directory by another build. With `PTT_TESTS_PTTD=/path/to/pttd`
//! it is that binary instead (a release build, for measurements).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, bail};
use ptt_relay::Relay;
use ptt_relay::config::Cli;

use crate::PATIENCE;

/// Environment variable carrying the child's `pttd` flags, one per line.
pub const ARGS_ENV: &str = "PTT_TESTS_PTTD_ARGS";

/// Environment variable naming a `pttd` binary to run instead of the test
/// binary.
pub const BIN_ENV: &str = "PTT_TESTS_PTTD";

/// What `pttd` prints once it listens (followed by the address).
const READY: &str = "pttd listening on ";

/// A running relay process.
pub struct PttdProcess {
    child: Child,
    /// The UDP address it listens on.
    pub addr: SocketAddr,
    /// The certificate clients pin.
    pub cert: PathBuf,
    /// When the process was started.
    pub spawned: Instant,
    /// When it said it listens.
    pub ready: Instant,
}

impl PttdProcess {
    /// Starts `pttd` with `args` and waits until it listens. Without
    /// [`BIN_ENV`] the test binary runs its test `child_test`, which must
    /// call [`serve_child`].
    pub fn start(child_test: &str, args: &[String]) -> anyhow::Result<Self> {
        let mut command = match std::env::var_os(BIN_ENV) {
            Some(bin) => {
                let mut command = Command::new(bin);
                command.args(args);
                command
            }
            None => {
                let mut command = Command::new(std::env::current_exe()?);
                command
                    .args([
                        child_test,
                        "--exact",
                        "--ignored",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(ARGS_ENV, args.join("\n"));
                command
            }
        };
        let spawned = Instant::now();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting pttd")?;
        let stdout = child.stdout.take().context("pttd stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads until the process ends, so its output never blocks it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The test harness may have printed `test … ` before it.
                if let Some((_, rest)) = line.split_once(READY) {
                    let _ = tx.send((rest.to_owned(), Instant::now()));
                }
            }
        });
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert: PathBuf::new(),
            spawned,
            ready: spawned,
        };
        let Ok((line, ready)) = rx.recv_timeout(PATIENCE) else {
            bail!("pttd did not say it listens within {PATIENCE:?}");
        };
        // "127.0.0.1:7700 (QUIC, ALPN ptt/1); clients pin /path/pttd-cert.pem"
        let (addr, _) = line.split_once(' ').context("pttd ready line")?;
        let (_, cert) = line.split_once("clients pin ").context("pttd ready line")?;
        process.addr = addr.parse().context("pttd address")?;
        process.cert = PathBuf::from(cert);
        process.ready = ready;
        Ok(process)
    }

    /// The process id (to read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no shutdown, no `GoingAway`) and
    /// waits until it is gone, so its port is free.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for PttdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags a test relay process starts with: its data directory and
/// directory file, `listen` for terminals, ops and console ports the kernel
/// picks, no recordings, and only errors in its log.
pub fn base_args(data_dir: &Path, directory: &Path, listen: SocketAddr) -> Vec<String> {
    [
        "--data-dir",
        &data_dir.display().to_string(),
        "--listen",
        &listen.to_string(),
        "--ops-listen",
        "127.0.0.1:0",
        "--console-listen",
        "127.0.0.1:0",
        "--directory",
        &directory.display().to_string(),
        "--record",
        "false",
        "--log",
        "error",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// In the child process: runs the relay as `pttd` does with the flags in
/// [`ARGS_ENV`] (printing the same ready line) until killed. Does nothing
/// when that variable is unset, so the child test passes when run normally.
pub fn serve_child() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let cli =
        Cli::try_load_from(std::iter::once("pttd").chain(args.split('\n'))).expect("pttd flags");
    let config = cli.config;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log).expect("pttd --log filter"),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let relay = Relay::load(config).await.expect("relay");
        println!(
            "{READY}{} (QUIC, ALPN ptt/1); clients pin {}",
            relay.local_addr(),
            relay.cert_path().display()
        );
        relay.run().await.expect("run");
    });
}

/// CPU time (user + system) process `pid` has used so far, from
/// `/proc/<pid>/stat` (in USER_HZ ticks, 100 a second on Linux); `None` if
/// it cannot be read.
pub fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields
    // after its closing one (utime and stime are fields 14 and 15).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(std::time::Duration::from_millis(ticks * 10))
}
