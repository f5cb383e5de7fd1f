//! A real NATS server for the cluster tests: Debian's `nats-server` (which
//! `.ci/run` installs) with JetStream, on a random loopback port, its store
//! in a temporary directory. Tests can kill it and start it again on the
//! same port with the same store, as an operator's restart would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::PATIENCE;

/// A running `nats-server -js` on 127.0.0.1; killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
}

impl NatsServer {
    /// Starts a server on a port it picks itself, and waits until it listens.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut server = Self {
            child: None,
            dir,
            port: 0,
        };
        server.spawn(None).await?;
        Ok(server)
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server process's id, while it runs (to read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port with the same store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.spawn(Some(self.port)).await
    }

    async fn spawn(&mut self, port: Option<u16>) -> anyhow::Result<()> {
        let ports = self.dir.path().join("ports");
        // A restart writes a new ports file: the old one must not be read.
        let _ = std::fs::remove_dir_all(&ports);
        std::fs::create_dir_all(&ports)?;
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(self.dir.path().join("store"))
            .arg("--ports_file_dir")
            .arg(&ports)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server (Debian's nats-server package; .ci/run installs it)")?;
        self.child = Some(child);
        self.port = wait_for_port(&ports).await?;
        Ok(())
    }
}

/// Waits for the ports file nats-server writes once it listens, and reads
/// its client port.
async fn wait_for_port(dir: &Path) -> anyhow::Result<u16> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(port) = read_port(dir) {
            return Ok(port);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "nats-server did not listen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_port(dir: &Path) -> Option<u16> {
    let file: PathBuf = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "ports"))?;
    let text = std::fs::read_to_string(file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports["nats"][0].as_str()?;
    url.rsplit(':').next()?.parse().ok()
}
