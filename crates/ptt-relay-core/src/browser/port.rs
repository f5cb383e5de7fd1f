//! The console port's identity over time: where it listens and which
//! certificate browsers pin now.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use super::certificate::ConsoleCertificate;
use crate::quic::{ServerConfigError, TransportSettings};
use crate::tls::TlsError;

/// How often the console port gets a new certificate: well inside its
/// [`CERTIFICATE_LIFETIME`](super::CERTIFICATE_LIFETIME), so one is never
/// less than a week from expiry. Open sessions keep their connection; a
/// page fetches the current hash each time it connects.
pub const ROTATE_EVERY: Duration = Duration::from_secs(6 * 24 * 3600);

/// Why the console port's QUIC configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BrowserPortError {
    /// The certificate could not be made or rustls refused it.
    #[error("console certificate: {0}")]
    Tls(#[from] TlsError),
    /// quinn refused the configuration.
    #[error("console port: {0}")]
    Server(#[from] ServerConfigError),
}

/// The console port: its address, its transport settings, and the
/// certificate in use, whose hash the ops port hands to console pages.
#[derive(Debug)]
pub struct BrowserPort {
    local_addr: SocketAddr,
    transport: TransportSettings,
    current: ArcSwap<ConsoleCertificate>,
}

impl BrowserPort {
    /// The port bound at `local_addr`, with a first certificate.
    pub fn new(local_addr: SocketAddr, transport: TransportSettings) -> Result<Self, TlsError> {
        Ok(Self {
            local_addr,
            transport,
            current: ArcSwap::from_pointee(ConsoleCertificate::generate(SystemTime::now())?),
        })
    }

    /// The UDP address browsers connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 of the certificate in use, in lowercase hexadecimal.
    pub fn certificate_sha256(&self) -> String {
        self.current.load().sha256_hex()
    }

    /// The QUIC server configuration with the certificate in use.
    pub fn server_config(&self) -> Result<quinn::ServerConfig, BrowserPortError> {
        let tls = self.current.load().tls_config()?;
        Ok(self.transport.browser_server_config(tls)?)
    }

    /// Makes a new certificate, hands its server configuration to `install`
    /// (which puts it on the endpoint), and only then publishes its hash, so
    /// a page never pins a certificate the port does not present yet.
    pub fn renew(&self, install: impl FnOnce(quinn::ServerConfig)) -> Result<(), BrowserPortError> {
        let next = Arc::new(ConsoleCertificate::generate(SystemTime::now())?);
        install(self.transport.browser_server_config(next.tls_config()?)?);
        self.current.store(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> TransportSettings {
        TransportSettings {
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            datagram_queue: Duration::from_millis(60),
            max_connections: 16,
        }
    }

    #[test]
    fn a_renewed_certificate_is_published_only_once_installed() {
        let port = BrowserPort::new(SocketAddr::from(([127, 0, 0, 1], 7781)), transport()).unwrap();
        let first = port.certificate_sha256();
        port.server_config().expect("a configuration for the first");
        let mut installed = false;
        port.renew(|_server| {
            // Pages still get the old hash while the endpoint changes over.
            assert_eq!(port.certificate_sha256(), first);
            installed = true;
        })
        .unwrap();
        assert!(installed);
        assert_ne!(port.certificate_sha256(), first);
    }
}
