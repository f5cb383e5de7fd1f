//! The connection options every subcommand but `load` takes, and the
//! client configuration they describe.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ptt_client::{Client, ClientConfig, Trust};

/// Where the relay is and who this terminal is; every subcommand but `load`
/// takes these.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// The relay, `HOST:PORT`; for a cluster its relays separated by commas
    /// (`a:7700,b:7700,c:7700`): the first is used, and the terminal moves to
    /// the next when its relay is lost.
    #[arg(
        long,
        value_name = "ADDR",
        env = "PTT_SERVER",
        default_value = "127.0.0.1:7700"
    )]
    pub server: String,
    /// The relay's certificate to pin (PEM): `pttd` writes it to
    /// `<data-dir>/pttd-cert.pem`. Only exactly this certificate is trusted.
    #[arg(
        long,
        value_name = "FILE",
        env = "PTT_CA",
        default_value = "./data/pttd-cert.pem"
    )]
    pub ca: PathBuf,
    /// This terminal's id in the relay's directory.
    #[arg(long, value_name = "N", env = "PTT_ID")]
    pub id: u32,
    /// This terminal's secret. Prefer the PTT_SECRET environment variable:
    /// a command-line argument is visible to every user in `ps`.
    #[arg(long, value_name = "S", env = "PTT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Seconds to wait for the relay to answer before calling it unreachable.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub connect_timeout: f64,
    /// Carry voice on QUIC streams, one per burst, instead of datagrams
    /// (proto/voice.md §4): for networks or middleboxes that drop QUIC
    /// datagrams. Costs latency when packets are lost (streams retransmit).
    #[arg(
        long,
        env = "PTT_VOICE_STREAMS",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub voice_streams: bool,
}

impl ConnArgs {
    /// The client configuration these options describe.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let mut relays = self
            .server
            .split(',')
            .map(str::trim)
            .filter(|relay| !relay.is_empty())
            .map(resolve);
        let server = relays.next().context("--server names no relay")??;
        let other_servers = relays.collect::<anyhow::Result<Vec<_>>>()?;
        let mut config = ClientConfig::new(
            server,
            Trust::Pinned(self.ca.clone()),
            self.id,
            self.secret.as_bytes(),
        );
        config.other_servers = other_servers;
        config.client_version = concat!("ptt-cli/", env!("CARGO_PKG_VERSION")).to_owned();
        config.datagrams = !self.voice_streams;
        if self.connect_timeout.is_finite() && self.connect_timeout > 0.0 {
            config.connect_timeout = Duration::from_secs_f64(self.connect_timeout.min(600.0));
        }
        Ok(config)
    }

    /// Connects and logs in.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Ok(Client::connect(self.client_config()?).await?)
    }
}

/// `HOST:PORT` to the first address it resolves to.
fn resolve(server: &str) -> anyhow::Result<SocketAddr> {
    server
        .to_socket_addrs()
        .with_context(|| format!("--server {server}: not HOST:PORT or does not resolve"))?
        .next()
        .with_context(|| format!("--server {server}: resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: &str) -> ConnArgs {
        ConnArgs {
            server: server.to_owned(),
            ca: PathBuf::from("cert.pem"),
            id: 1,
            secret: "s".to_owned(),
            connect_timeout: 5.0,
            voice_streams: false,
        }
    }

    #[test]
    fn a_cluster_is_its_relays_separated_by_commas() {
        let config = args("127.0.0.1:7700, 127.0.0.1:7701,127.0.0.1:7702")
            .client_config()
            .unwrap();
        assert_eq!(config.server, SocketAddr::from(([127, 0, 0, 1], 7700)));
        assert_eq!(
            config.other_servers,
            [7701, 7702].map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        );
        let alone = args("127.0.0.1:7700").client_config().unwrap();
        assert!(alone.other_servers.is_empty());
        let error = args("127.0.0.1:7700,nowhere").client_config().unwrap_err();
        assert!(error.to_string().contains("nowhere"), "{error}");
        assert!(args(",").client_config().is_err());
    }
}
