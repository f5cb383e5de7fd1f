//! The relay of the session tests: guards in a district and a squad, on
//! loopback, restartable on the same port, and their client settings.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use ptt_client::{Client, ClientConfig, ReconnectPolicy, Trust};
use ptt_directory::{HashParams, hash_secret};
use ptt_relay::config::Config;
use tokio::task::JoinHandle;

use super::{PATIENCE, secret};

/// Group every test terminal belongs to.
pub(crate) const DISTRICT: u32 = 10;
/// A second group of terminals 100 and 101.
pub(crate) const SQUAD: u32 = 20;

/// Guards 100..=102 in the district; 100 and 101 also in the squad; 103 is
/// listen-only in the district.
pub(crate) fn directory_toml() -> String {
    let mut out = String::new();
    for id in 100..=103 {
        let hash = hash_secret(secret(id).as_bytes(), HashParams::LIGHT).expect("hash");
        let _ = write!(
            out,
            "[[terminal]]\nid = {id}\nname = \"T{id}\"\nrole = \"guard\"\norganisation = \"Test\"\n\
             secret-hash = \"{hash}\"\nmax-priority = \"normal\"\nemergency = true\n\n"
        );
    }
    let _ = write!(
        out,
        "[[group]]\nid = {DISTRICT}\nname = \"District\"\nkind = \"district\"\n\n"
    );
    for id in 100..=102 {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out.push_str("[[group.members]]\nterminal = 103\ntalk = false\n\n");
    let _ = write!(
        out,
        "[[group]]\nid = {SQUAD}\nname = \"Squad\"\nkind = \"other\"\n\n"
    );
    for id in 100..=101 {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out
}

/// A real relay serving [`directory_toml`] from `data`.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    pub(crate) cert: PathBuf,
    stop: Box<dyn FnOnce() + Send>,
    task: JoinHandle<Result<(), ptt_relay::RelayError>>,
}

impl Relay {
    /// Starts a relay on `listen` (port 0: any) with its state in `data`.
    /// Retries the bind for a while: a restarted relay takes the port of
    /// one that has just stopped.
    pub(crate) async fn start(data: &Path, listen: SocketAddr) -> anyhow::Result<Self> {
        let directory = data.join("directory.toml");
        std::fs::write(&directory, directory_toml())?;
        let deadline = Instant::now() + PATIENCE;
        let relay = loop {
            let config = Config {
                data_dir: data.to_owned(),
                listen,
                ops_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                console_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                directory: Some(directory.clone()),
                idle_timeout: Duration::from_secs(5),
                keep_alive: Duration::from_secs(1),
                ..Config::default()
            };
            match ptt_relay::Relay::load(config).await {
                Ok(relay) => break relay,
                Err(ptt_relay::RelayError::Bind { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error.into()),
            }
        };
        let addr = relay.local_addr();
        let cert = relay.cert_path().to_owned();
        let token = relay.shutdown_token();
        let task = tokio::spawn(relay.run());
        Ok(Self {
            addr,
            cert,
            stop: Box::new(move || token.cancel()),
            task,
        })
    }

    /// Stops the relay gracefully (terminals get `GoingAway`) and waits.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        (self.stop)();
        self.task.await??;
        Ok(())
    }

    pub(crate) fn config(&self, terminal: u32) -> ClientConfig {
        let mut config = ClientConfig::new(
            self.addr,
            Trust::Pinned(self.cert.clone()),
            terminal,
            secret(terminal),
        );
        config.connect_timeout = Duration::from_secs(3);
        config.idle_timeout = Duration::from_secs(5);
        config.keep_alive = Duration::from_secs(1);
        config.reconnect = ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..ReconnectPolicy::default()
        };
        config
    }

    pub(crate) async fn client(&self, terminal: u32) -> anyhow::Result<Client> {
        Client::connect(self.config(terminal))
            .await
            .with_context(|| format!("login of {terminal}"))
    }
}
