//! What the `ptt` command's tests share: a real relay on loopback serving a
//! directory the test writes, and the connection options for its terminals.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use ptt_cli::cli::ConnArgs;
use ptt_client::{Client, ClientConfig, Trust};
use ptt_relay::config::Config;
use ptt_relay::directory::{HashParams, hash_secret};
use tempfile::TempDir;

/// The secret of terminal `id` in every test directory.
pub(crate) fn secret(id: u32) -> String {
    format!("secret-{id}")
}

/// A `[[terminal]]` entry with the test secret.
pub(crate) fn terminal_toml(id: u32, name: &str, role: &str, max_priority: &str) -> String {
    let hash = hash_secret(secret(id).as_bytes(), HashParams::LIGHT).expect("hash");
    let mut out = String::new();
    let _ = write!(
        out,
        "[[terminal]]\nid = {id}\nname = \"{name}\"\nrole = \"{role}\"\norganisation = \"Test\"\n\
         secret-hash = \"{hash}\"\nmax-priority = \"{max_priority}\"\n\n"
    );
    out
}

/// A real relay on 127.0.0.1, any port; stopped when dropped.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    pub(crate) cert: PathBuf,
    stop: Option<Box<dyn FnOnce() + Send>>,
    _dir: TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl Relay {
    /// Starts a relay serving `directory` (TOML) from a fresh data dir.
    pub(crate) async fn start(directory: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("directory.toml");
        std::fs::write(&path, directory)?;
        let config = Config {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse()?,
            ops_listen: "127.0.0.1:0".parse()?,
            directory: Some(path),
            ..Config::default()
        };
        let relay = ptt_relay::Relay::load(config).await?;
        let addr = relay.local_addr();
        let cert = relay.cert_path().to_owned();
        let token = relay.shutdown_token();
        tokio::spawn(relay.run());
        Ok(Self {
            addr,
            cert,
            stop: Some(Box::new(move || token.cancel())),
            _dir: dir,
        })
    }

    /// The `ptt` connection options of terminal `id`.
    pub(crate) fn conn(&self, id: u32) -> ConnArgs {
        ConnArgs {
            server: self.addr.to_string(),
            ca: self.cert.clone(),
            id,
            secret: secret(id),
            connect_timeout: 3.0,
        }
    }

    /// Terminal `id`, logged in.
    pub(crate) async fn client(&self, id: u32) -> anyhow::Result<Client> {
        let config = ClientConfig::new(self.addr, Trust::Pinned(self.cert.clone()), id, secret(id));
        Client::connect(config)
            .await
            .with_context(|| format!("login of {id}"))
    }
}
