//! The client's QUIC/TLS configuration: TLS 1.3, ALPN `ptt/1`, datagrams
//! on, keep-alive, and trust in exactly the relay the operator named.
//!
//! A pinned certificate is compared byte for byte with what the relay
//! presents; its name, issuer and validity dates do not matter (a district's
//! relay generates its own certificate once and keeps it), but the relay must
//! still prove it holds the matching private key, which rustls checks with
//! the handshake signature.

use std::path::Path;
use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use quinn::{IdleTimeout, TransportConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{ClientConfig, Trust};
use crate::error::ClientError;

/// The ALPN id of the PTT protocol (proto/voice.md §1).
pub const ALPN: &[u8] = b"ptt/1";

/// Stream flow-control window without datagrams: about 1.6 s of voice in
/// 100-byte frames.
const VOICE_STREAM_WINDOW: u32 = 8 * 1024;

/// Datagram receive buffer: about a second of voice from a few talkers.
const DATAGRAM_RECEIVE_BUFFER: usize = 64 * ptt_proto::voice::MAX_DATAGRAM_SIZE;

/// Builds the quinn client configuration for `config`.
pub fn quic_config(config: &ClientConfig) -> Result<quinn::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?;
    let mut tls = match &config.trust {
        Trust::Pinned(path) => {
            let pinned = read_certificates(path)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                    pinned,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        }
        Trust::Ca(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certificates(path)? {
                roots.add(cert).map_err(|e| ClientError::CertificateFile {
                    path: path.to_owned(),
                    detail: format!("not a usable CA certificate: {e}"),
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls)
        .map_err(|e| ClientError::Config(format!("TLS configuration unusable for QUIC: {e}")))?;
    let mut transport = TransportConfig::default();
    let idle = IdleTimeout::try_from(config.idle_timeout)
        .map_err(|_| ClientError::Config("idle timeout too long for QUIC".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(config.keep_alive));
    if config.datagrams {
        // Setting a receive buffer advertises datagram support.
        transport.datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER));
    } else {
        // Voice on streams (voice.md §4): a small window bounds how much
        // voice the relay can have in flight to this terminal, so a slow
        // path makes the relay skip ahead (newest wins) instead of playing
        // seconds late. Control messages still flow, paced by it.
        transport
            .datagram_receive_buffer_size(None)
            .stream_receive_window(quinn::VarInt::from_u32(VOICE_STREAM_WINDOW));
    }
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    quic.transport_config(Arc::new(transport));
    Ok(quic)
}

/// Every certificate in a PEM file; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let file_error = |detail: String| ClientError::CertificateFile {
        path: path.to_owned(),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error("no certificate in the file".into()));
    }
    Ok(certs)
}

/// Accepts exactly the pinned certificate(s), and checks the handshake
/// signature with the pinned certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    pinned: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // QUIC is TLS 1.3 only; a TLS 1.2 handshake is an attack or a bug.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// True if a QUIC transport error code is a TLS alert about the peer's
/// certificate (bad, unsupported, revoked, expired, unknown, unknown CA).
pub(crate) fn is_certificate_alert(code: u64) -> bool {
    // QUIC carries TLS alerts as CRYPTO_ERROR 0x100 + alert (RFC 9001 §4.8).
    matches!(code.checked_sub(0x100), Some(42..=46 | 48))
}
