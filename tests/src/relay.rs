//! A real relay on a loopback port for one test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ptt_relay::Relay;
use ptt_relay::config::Config;
use ptt_relay_core::group::Groups;
use ptt_relay_core::metrics::Metrics;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Client, TestDirectory};

/// A running relay with its own data directory.
pub struct TestRelay {
    pub addr: SocketAddr,
    /// The ops HTTP port (metrics, API, dashboard).
    pub ops: SocketAddr,
    /// The console port (browsers over WebTransport).
    pub console: SocketAddr,
    pub cert: PathBuf,
    pub data: TempDir,
    pub metrics: Arc<Metrics>,
    /// Every group of the relay (floor gates, listeners, traffic counts).
    pub groups: Arc<Groups>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), ptt_relay::RelayError>>,
}

impl TestRelay {
    /// The configuration a test relay starts from: port 0 on loopback, the
    /// directory written into a fresh data directory, short timeouts.
    pub fn config(data: &TempDir, directory: &TestDirectory) -> Config {
        let path = data.path().join("directory.toml");
        std::fs::write(&path, directory.to_toml()).expect("write directory");
        Config {
            data_dir: data.path().to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            directory: Some(path),
            idle_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(1),
            ..Config::default()
        }
    }

    /// Starts a relay serving `directory`.
    pub async fn start(directory: &TestDirectory) -> anyhow::Result<Self> {
        Self::start_with(directory, |_| {}).await
    }

    /// Starts a relay serving `directory`, after `tweak` adjusted its config.
    pub async fn start_with(
        directory: &TestDirectory,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        crate::init_logging();
        let data = tempfile::tempdir()?;
        let mut config = Self::config(&data, directory);
        tweak(&mut config);
        let relay = Relay::load(config).await?;
        let addr = relay.local_addr();
        let ops = relay.ops_addr();
        let console = relay.console_addr();
        let cert = relay.cert_path().to_owned();
        let metrics = relay.metrics();
        let groups = relay.groups();
        let shutdown = relay.shutdown_token();
        let task = tokio::spawn(relay.run());
        Ok(Self {
            addr,
            ops,
            console,
            cert,
            data,
            metrics,
            groups,
            shutdown,
            task,
        })
    }

    /// Logs in every terminal of `ids` concurrently (as a shift starting),
    /// returned sorted by terminal id.
    pub async fn connect_all(&self, ids: impl IntoIterator<Item = u32>) -> Vec<Client> {
        let mut set = tokio::task::JoinSet::new();
        for id in ids {
            let (addr, cert) = (self.addr, self.cert.clone());
            set.spawn(async move { Client::connect(addr, &cert, id).await });
        }
        let mut out = Vec::new();
        while let Some(client) = set.join_next().await {
            out.push(client.expect("login task").expect("login"));
        }
        out.sort_by_key(|c| c.terminal);
        out
    }

    /// Stops the relay gracefully and waits for it.
    pub async fn stop(self) -> anyhow::Result<TempDir> {
        self.shutdown.cancel();
        self.task.await??;
        Ok(self.data)
    }
}
