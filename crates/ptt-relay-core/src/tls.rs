//! The relay's TLS identity: an operator's certificate, or a self-signed one
//! generated on first start and kept in the data directory so that clients
//! can pin it across restarts. The stateless reset key is kept the same way
//! (see [`crate::quic::ResetKey`]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::tls13::OkmBlock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocol id of the control and voice protocol (proto/voice.md).
pub const ALPN: &[u8] = b"ptt/1";

/// File name of the generated certificate inside the data directory.
pub const GENERATED_CERT: &str = "pttd-cert.pem";
/// File name of the generated private key inside the data directory.
pub const GENERATED_KEY: &str = "pttd-key.pem";

/// File name of the stateless reset key inside the data directory.
pub const RESET_KEY_FILE: &str = "pttd-reset.key";

/// Length of the stateless reset key: 64 random bytes, HMAC-SHA256's block
/// size (what quinn draws for its own per-process key).
pub const RESET_KEY_LEN: usize = 64;

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
        tls13_server(self.chain, self.key, ALPN)
    }
}

/// A TLS 1.3 server configuration (QUIC requires 1.3) for one certificate
/// chain, speaking only `alpn`, without client certificates or early data.
pub(crate) fn tls13_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    config.max_early_data_size = 0;
    Ok(config)
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes()).map_err(
        |source| TlsError::Io {
            path: key_path.to_owned(),
            source,
        },
    )?;
    fs::write(cert_path, certified.cert.pem()).map_err(|source| TlsError::Io {
        path: cert_path.to_owned(),
        source,
    })
}

/// Writes a secret file readable by its owner only (mode 0600 when it is
/// created) and syncs it to disk. Also used for the stateless reset key
/// ([`crate::quic::ResetKey`]).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Reads the stateless reset key kept in `data_dir`, making it on first use
/// (what it is for: `quic::ResetKey`). The bytes are held in an [`OkmBlock`],
/// which wipes them when dropped.
pub fn load_or_generate_reset_key(data_dir: &Path) -> Result<OkmBlock, ResetKeyError> {
    let path = data_dir.join(RESET_KEY_FILE);
    if !path.exists() {
        generate_reset_key(&path)?;
        tracing::info!(path = %path.display(), "generated the stateless reset key");
    }
    load_reset_key(&path)
}

/// Reads a reset key file: exactly [`RESET_KEY_LEN`] bytes, anything else
/// is an error naming the file.
pub fn load_reset_key(path: &Path) -> Result<OkmBlock, ResetKeyError> {
    let io = |source| ResetKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = fs::metadata(path).map_err(io)?;
    let length = |found| ResetKeyError::Length {
        path: path.to_owned(),
        found,
    };
    if metadata.len() != RESET_KEY_LEN as u64 {
        return Err(length(metadata.len()));
    }
    let bytes = fs::read(path).map_err(io)?;
    if bytes.len() != RESET_KEY_LEN {
        return Err(length(bytes.len() as u64));
    }
    #[cfg(unix)]
    if std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "the stateless reset key can be read by other users: chmod 600 it"
        );
    }
    Ok(OkmBlock::new(&bytes))
}

/// Makes a new reset key file. It is written beside its final name and
/// renamed, so a crash while writing leaves no truncated key.
fn generate_reset_key(path: &Path) -> Result<(), ResetKeyError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ResetKeyError::Io { path, source }
    };
    let mut key = [0u8; RESET_KEY_LEN];
    fill_random(&mut key)?;
    let partial = path.with_extension("key.partial");
    let _ = fs::remove_file(&partial);
    write_private(&partial, &key).map_err(io(&partial))?;
    fs::rename(&partial, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        // Best effort: the rename reaches the disk before any token does.
        let _ = fs::File::open(dir).and_then(|dir| dir.sync_all());
    }
    Ok(())
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), ResetKeyError> {
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| ResetKeyError::Random)
}

/// Why the stateless reset key could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ResetKeyError {
    /// The key file could not be read or written.
    #[error("stateless reset key {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file does not hold exactly [`RESET_KEY_LEN`] bytes.
    #[error(
        "stateless reset key {path}: {found} bytes instead of {RESET_KEY_LEN}; the file is \
         damaged: delete it and pttd makes a new key (terminals connected before then notice \
         that one restart only by their idle timeout)"
    )]
    Length {
        /// The file concerned.
        path: PathBuf,
        /// How many bytes it holds.
        found: u64,
    },
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system for the stateless reset key")]
    Random,
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

    #[test]
    fn the_reset_key_is_private_and_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate_reset_key(dir.path()).unwrap();
        let path = dir.path().join(RESET_KEY_FILE);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), RESET_KEY_LEN);
        assert_eq!(first.as_ref(), &bytes[..]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        assert!(!path.with_extension("key.partial").exists());

        let second = load_or_generate_reset_key(dir.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes, "reused, not rewritten");
        assert_eq!(second.as_ref(), first.as_ref());
        let elsewhere = tempfile::tempdir().unwrap();
        let other = load_or_generate_reset_key(elsewhere.path()).unwrap();
        assert_ne!(other.as_ref(), first.as_ref(), "random, not a constant");
    }

    #[test]
    fn a_damaged_reset_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESET_KEY_FILE);
        for length in [0, 10, RESET_KEY_LEN - 1, RESET_KEY_LEN + 1] {
            fs::write(&path, vec![1u8; length]).unwrap();
            let Err(error) = load_or_generate_reset_key(dir.path()) else {
                panic!("a damaged key must not load");
            };
            let text = error.to_string();
            assert!(
                matches!(error, ResetKeyError::Length { found, .. } if found == length as u64),
                "{text}"
            );
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(&format!("{length} bytes")), "{text}");
            assert_eq!(fs::read(&path).unwrap().len(), length, "left as it was");
        }
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let Err(error) = load_or_generate_reset_key(dir.path()) else {
            panic!("a damaged key must not load");
        };
        assert!(error.to_string().contains(RESET_KEY_FILE), "{error}");
    }
}
