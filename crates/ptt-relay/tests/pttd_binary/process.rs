//! The real `pttd` binary (`CARGO_BIN_EXE_pttd`, built by cargo for this
//! test) as a child process: started with flags, its ready line parsed, its
//! output kept line by line, and stopped the way systemd and docker stop it,
//! with SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What `pttd` prints once it listens, whatever the log level.
const READY: &str = "pttd listening on ";

/// How long a start may take (generous: the machine is shared).
const START_WITHIN: Duration = Duration::from_secs(10);

/// How long the output may trail the exit (the pipes are closed by then).
const OUTPUT_WITHIN: Duration = Duration::from_secs(2);

/// A running `pttd`; killed with SIGKILL if the test ends before it is
/// stopped.
pub(crate) struct Pttd {
    child: Child,
    /// The UDP address it listens on.
    pub(crate) addr: SocketAddr,
    /// The certificate clients pin.
    pub(crate) cert: PathBuf,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<Vec<String>>,
}

/// How a stopped `pttd` ended.
#[derive(Debug)]
pub(crate) struct Stopped {
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// SIGTERM → exit.
    pub(crate) took: Duration,
    /// Every line it wrote to stdout: the ready line, then its log
    /// (`tracing_subscriber::fmt` writes to stdout).
    pub(crate) stdout: Vec<String>,
    /// Every line it wrote to stderr (`pttd: <error>` when it fails).
    pub(crate) stderr: Vec<String>,
}

impl Pttd {
    /// Starts `pttd` with `args` and waits until it says it listens.
    pub(crate) async fn start(args: &[String]) -> anyhow::Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pttd"));
        // Only the flags configure it, not the environment the tests run in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PTTD_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(args)
            // Plain log lines: the test reads them.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting pttd")?;
        let (ready_tx, ready) = oneshot::channel();
        let stdout = tokio::spawn(read_lines(
            child.stdout.take().context("pttd stdout")?,
            Some(ready_tx),
        ));
        let stderr = tokio::spawn(read_lines(
            child.stderr.take().context("pttd stderr")?,
            None,
        ));
        let line = match tokio::time::timeout(START_WITHIN, ready).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => {
                let status = child.wait().await?;
                let errors = stderr.await.unwrap_or_default().join("\n");
                bail!("pttd ended ({status}) before it listened:\n{errors}");
            }
            Err(_) => bail!("pttd did not say it listens within {START_WITHIN:?}"),
        };
        // "127.0.0.1:7700 (QUIC, ALPN ptt/1); clients pin /path/pttd-cert.pem"
        let (addr, _) = line.split_once(' ').context("pttd ready line")?;
        let (_, cert) = line.split_once("clients pin ").context("pttd ready line")?;
        Ok(Self {
            child,
            addr: addr.parse().context("pttd address")?,
            cert: PathBuf::from(cert),
            stdout,
            stderr,
        })
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit, then
    /// for the rest of its output.
    pub(crate) async fn terminate(mut self, within: Duration) -> anyhow::Result<Stopped> {
        let pid = self.child.id().context("pttd has already exited")?;
        // kill(1) rather than libc: no unsafe code and no new dependency.
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid}: {sent}");
        let signalled = Instant::now();
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| format!("pttd still running {within:?} after SIGTERM"))??;
        let took = signalled.elapsed();
        let stdout = tokio::time::timeout(OUTPUT_WITHIN, self.stdout)
            .await
            .context("pttd's stdout still open after its exit")??;
        let stderr = tokio::time::timeout(OUTPUT_WITHIN, self.stderr)
            .await
            .context("pttd's stderr still open after its exit")??;
        Ok(Stopped {
            status,
            took,
            stdout,
            stderr,
        })
    }
}

/// Reads `stream` to its end (so the process never blocks on a full pipe);
/// hands the rest of the ready line to `ready` when it comes.
async fn read_lines(
    stream: impl AsyncRead + Unpin,
    mut ready: Option<oneshot::Sender<String>>,
) -> Vec<String> {
    let mut lines = BufReader::new(stream).lines();
    let mut kept = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((_, rest)) = line.split_once(READY)
            && let Some(ready) = ready.take()
        {
            let _ = ready.send(rest.to_owned());
        }
        kept.push(line);
    }
    kept
}

impl Stopped {
    /// The log lines (stdout after the ready line).
    pub(crate) fn log(&self) -> impl Iterator<Item = &str> {
        self.stdout
            .iter()
            .map(String::as_str)
            .filter(|line| !line.contains(READY))
    }

    /// Everything it wrote, for failure messages.
    pub(crate) fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }
}
