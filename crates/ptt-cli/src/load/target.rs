//! The relay a load run talks to and how each simulated terminal logs in
//! to it: address, pinned certificate, the secrets file, client settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use ptt_client::{ClientConfig, ReconnectPolicy, Trust};

/// The relay to load and how to log in to it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) cert: PathBuf,
    /// `(terminal id, secret)`, in file order.
    pub(crate) secrets: Vec<(u32, String)>,
    /// Every terminal asks for voice on streams (voice.md §4) instead of
    /// datagrams.
    pub(crate) voice_streams: bool,
    /// Every terminal's keep-alive interval, if not the client's default.
    pub(crate) keep_alive: Option<Duration>,
}

/// The group id of a dispatcher's all-call (proto/voice.md).
pub(crate) const ALL_CALL_GROUP: u32 = 0;

/// Parses a secrets file: `<id> <secret>` per line, `#` comments.
pub(crate) fn parse_secrets(text: &str) -> anyhow::Result<Vec<(u32, String)>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
            bail!("secrets line {}: expected `<id> <secret>`", n + 1);
        };
        let id = id
            .parse()
            .with_context(|| format!("secrets line {}: bad terminal id {id:?}", n + 1))?;
        out.push((id, secret.to_owned()));
    }
    Ok(out)
}

/// The client settings of simulated terminal `id`: no reconnecting, a
/// patient first connection.
pub(super) fn client_config(target: &Target, id: u32, secret: &str) -> ClientConfig {
    let mut config = ClientConfig::new(target.addr, Trust::Pinned(target.cert.clone()), id, secret);
    config.client_version = concat!("ptt-load/", env!("CARGO_PKG_VERSION")).to_owned();
    config.connect_timeout = Duration::from_secs(10);
    config.datagrams = !target.voice_streams;
    if let Some(keep_alive) = target.keep_alive {
        config.keep_alive = keep_alive;
    }
    config.reconnect = ReconnectPolicy {
        enabled: false,
        ..ReconnectPolicy::default()
    };
    config
}

#[cfg(test)]
mod tests {
    use crate::load::target::*;

    #[test]
    fn secrets_parse() {
        let s = parse_secrets("# c\n1 abc\n\n2 def\n").unwrap();
        assert_eq!(s, vec![(1, "abc".to_owned()), (2, "def".to_owned())]);
        assert!(parse_secrets("x y\n").is_err());
        assert!(parse_secrets("1\n").is_err());
    }
}
