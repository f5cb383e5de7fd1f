//! The console port's certificate: what browsers accept by hash alone.

use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::tls::TlsError;

/// How long a console certificate is valid: browsers accept a certificate
/// by its hash only if it is valid for at most 14 days (WebTransport,
/// `serverCertificateHashes`), so 13, the hour before its start included.
pub const CERTIFICATE_LIFETIME: Duration = Duration::from_secs(13 * 24 * 3600);

/// How long before "now" a new certificate's validity starts: a browser
/// whose clock is a little behind the relay's must not see it as not yet
/// valid.
const BACKDATED: Duration = Duration::from_secs(3600);

/// A self-signed ECDSA P-256 certificate for the console port, with its
/// SHA-256 (what the page hands the browser to pin).
pub struct ConsoleCertificate {
    /// The certificate (DER), alone in its chain.
    pub certificate: CertificateDer<'static>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the DER certificate.
    pub sha256: [u8; 32],
    /// When it stops being valid.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for ConsoleCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleCertificate")
            .field("sha256", &self.sha256_hex())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ConsoleCertificate {
    /// Makes a certificate valid from an hour before `now` for
    /// [`CERTIFICATE_LIFETIME`], naming `localhost`, `127.0.0.1` and `::1`
    /// (a browser pinning it by hash checks no name).
    pub fn generate(now: SystemTime) -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])?;
        let not_before = now - BACKDATED;
        let not_after = not_before + CERTIFICATE_LIFETIME;
        params.not_before = time::OffsetDateTime::from(not_before);
        params.not_after = time::OffsetDateTime::from(not_after);
        let certificate = params.self_signed(&key)?.der().clone();
        let digest = ring::digest::digest(&ring::digest::SHA256, &certificate);
        let mut sha256 = [0; 32];
        sha256.copy_from_slice(digest.as_ref());
        Ok(Self {
            certificate,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            sha256,
            not_after,
        })
    }

    /// The hash in lowercase hexadecimal, as the ops port serves it.
    pub fn sha256_hex(&self) -> String {
        self.sha256
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The TLS configuration of the console port with this certificate:
    /// TLS 1.3, ALPN `h3`.
    pub fn tls_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        crate::tls::tls13_server(
            vec![self.certificate.clone()],
            self.key.clone_key(),
            web_transport_quinn::ALPN.as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_certificate_is_what_browsers_pin_by_hash() {
        let now = SystemTime::now();
        let made = ConsoleCertificate::generate(now).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &made.certificate);
        assert_eq!(made.sha256_hex().len(), 64);
        assert_eq!(&made.sha256[..], digest.as_ref());
        // Valid now, for less than the browsers' 14 days.
        assert!(made.not_after > now);
        let (_, parsed) = x509_validity(&made.certificate);
        assert!(parsed <= Duration::from_secs(14 * 24 * 3600));
        // ECDSA P-256 with SHA-256: its algorithm identifier is in the DER.
        const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        assert!(
            made.certificate
                .windows(ECDSA_WITH_SHA256.len())
                .any(|w| w == ECDSA_WITH_SHA256)
        );
        made.tls_config().expect("rustls takes the pair");
        // Each one is new.
        let next = ConsoleCertificate::generate(now).unwrap();
        assert_ne!(next.sha256, made.sha256);
    }

    /// The certificate's validity as written in it (notBefore, and the
    /// length up to notAfter): the two UTCTime values of its DER.
    fn x509_validity(der: &[u8]) -> (time::OffsetDateTime, Duration) {
        let times: Vec<time::OffsetDateTime> = der
            .windows(15)
            .filter(|w| w[0] == 0x17 && w[1] == 13 && w[14] == b'Z')
            .map(|w| {
                let text = std::str::from_utf8(&w[2..14]).unwrap();
                let n = |i: usize| text[i..i + 2].parse::<u8>().unwrap();
                let date = time::Date::from_calendar_date(
                    2000 + i32::from(n(0)),
                    time::Month::try_from(n(2)).unwrap(),
                    n(4),
                )
                .unwrap();
                date.with_hms(n(6), n(8), n(10)).unwrap().assume_utc()
            })
            .collect();
        assert_eq!(times.len(), 2, "notBefore and notAfter");
        let length = times[1] - times[0];
        (times[0], Duration::try_from(length).unwrap())
    }
}
