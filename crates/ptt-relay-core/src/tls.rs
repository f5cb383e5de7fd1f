//! The relay's TLS identity: an operator's certificate, or a self-signed one
//! generated on first start and kept in the data directory so that clients
//! can pin it across restarts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocol id of the control and voice protocol (proto/voice.md).
pub const ALPN: &[u8] = b"ptt/1";

/// File name of the generated certificate inside the data directory.
pub const GENERATED_CERT: &str = "pttd-cert.pem";
/// File name of the generated private key inside the data directory.
pub const GENERATED_KEY: &str = "pttd-key.pem";

/// Why the relay's TLS identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written; the path says which.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {detail}")]
    Pem {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong with it.
        detail: String,
    },
    /// The self-signed certificate could not be generated.
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate/key pair (e.g. the key does not match).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its private key, with the file the chain came from
/// (printed at start-up so operators know what clients must pin).
#[derive(Debug)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// Where the chain is stored (clients pin or trust this file).
    pub cert_path: PathBuf,
}

impl Identity {
    /// Loads the operator's certificate and key from PEM files.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert_path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Pem {
                path: cert_path.to_owned(),
                detail: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                path: cert_path.to_owned(),
                detail: "no certificate found".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Pem {
            path: key_path.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            chain,
            key,
            cert_path: cert_path.to_owned(),
        })
    }

    /// Loads the self-signed identity kept in `data_dir`, generating it on
    /// first use. The certificate names `localhost`, `127.0.0.1` and `::1`.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, TlsError> {
        let cert_path = data_dir.join(GENERATED_CERT);
        let key_path = data_dir.join(GENERATED_KEY);
        if !cert_path.exists() || !key_path.exists() {
            generate(&cert_path, &key_path)?;
        }
        Self::load(&cert_path, &key_path)
    }

    /// Builds the rustls server configuration: TLS 1.3 only (QUIC requires
    /// it), ALPN `ptt/1`, no client certificates.
    pub fn server_config(self) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.max_early_data_size = 0;
        Ok(config)
    }
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    fs::write(cert_path, certified.cert.pem()).map_err(|source| TlsError::Io {
        path: cert_path.to_owned(),
        source,
    })
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_generate(dir.path()).unwrap();
        let second = Identity::load_or_generate(dir.path()).unwrap();
        assert_eq!(
            first.chain, second.chain,
            "a restart must keep the pinned certificate"
        );
        let config = second.server_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![ALPN.to_vec()]);
    }

    #[test]
    fn a_missing_certificate_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = Identity::load(&missing, &missing).unwrap_err();
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
