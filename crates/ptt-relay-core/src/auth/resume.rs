//! Session resumption credentials: after a login the relay hands the terminal
//! a cheap, expiring credential it signed itself (HMAC-SHA256 over the
//! terminal id, the key's epoch and the expiry), which the terminal presents
//! on its next `Hello` instead of its secret. Checking one costs a hash of a
//! few dozen bytes instead of an argon2 verification.
//!
//! Layout (49 bytes, big-endian): version `1` (1 byte), key epoch (u32),
//! terminal id (u32), expiry in Unix milliseconds (u64), then the tag
//! (32 bytes) over everything before it, prefixed with a domain label.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rustls::crypto::tls13::OkmBlock;

/// Length of a credential in bytes.
pub const TOKEN_LEN: usize = SIGNED_LEN + TAG_LEN;

const VERSION: u8 = 1;
const SIGNED_LEN: usize = 1 + 4 + 4 + 8;
const TAG_LEN: usize = 32;
/// Separates these tags from any other use of the key.
const DOMAIN: &[u8] = b"ptt-relay resume v1\0";

/// The relay's signing key: 32 random bytes and the epoch that names them.
/// A credential signed under another epoch is refused as stale.
#[derive(Clone)]
pub struct ResumeKey {
    epoch: u32,
    secret: [u8; 32],
}

/// Never shows the key.
impl std::fmt::Debug for ResumeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeKey")
            .field("epoch", &self.epoch)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ResumeKey {
    /// A key from its parts (as stored in the key file).
    pub fn from_parts(epoch: u32, secret: [u8; 32]) -> Self {
        Self { epoch, secret }
    }

    /// A fresh random key with a random epoch.
    pub fn generate() -> Result<Self, rustls::crypto::GetRandomFailed> {
        let random = rustls::crypto::ring::default_provider().secure_random;
        let mut secret = [0u8; 32];
        random.fill(&mut secret)?;
        let mut epoch = [0u8; 4];
        random.fill(&mut epoch)?;
        Ok(Self {
            epoch: u32::from_be_bytes(epoch),
            secret,
        })
    }

    /// The epoch credentials signed with this key carry.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The key's bytes, for writing the key file.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let mut message = Vec::with_capacity(DOMAIN.len() + signed.len());
        message.extend_from_slice(DOMAIN);
        message.extend_from_slice(signed);
        hmac_sha256(&self.secret, &message)
    }
}

/// HMAC-SHA256 with the ring provider rustls already links (through its
/// TLS 1.3 SHA-256 suite's HKDF, whose `hmac_sign` is plain HMAC).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; TAG_LEN] {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .expect("a TLS 1.3 suite");
    let tag = suite.hkdf_provider.hmac_sign(&OkmBlock::new(key), message);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeRefusal {
    /// The relay does not offer resumption (its lifetime is zero).
    #[error("session resumption is off")]
    Off,
    /// Not a credential of this format.
    #[error("malformed credential")]
    Malformed,
    /// Signed under another key epoch (the key was replaced).
    #[error("credential from another key")]
    OtherKey,
    /// The tag does not match: altered or forged.
    #[error("credential tag does not match")]
    Forged,
    /// Genuine, but for another terminal.
    #[error("credential of another terminal")]
    OtherTerminal,
    /// Genuine, but past its expiry (or issued for longer than the relay now
    /// allows).
    #[error("credential expired")]
    Expired,
}

impl ResumeRefusal {
    /// True if the credential was genuine once and merely outlived its key
    /// or expiry; false if it was never valid (altered, forged, malformed,
    /// another terminal's).
    pub fn is_stale(self) -> bool {
        matches!(
            self,
            ResumeRefusal::Off | ResumeRefusal::OtherKey | ResumeRefusal::Expired
        )
    }
}

/// Issues and checks resumption credentials under one key.
#[derive(Debug, Clone)]
pub struct Resumption {
    key: ResumeKey,
    lifetime: Duration,
}

impl Resumption {
    /// Credentials signed with `key`, valid for `lifetime` after issue; a
    /// zero lifetime turns resumption off.
    pub fn new(key: ResumeKey, lifetime: Duration) -> Self {
        Self { key, lifetime }
    }

    /// How long a credential is valid.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A credential for `terminal`, valid until `now_ms` (Unix ms) plus the
    /// lifetime; empty when resumption is off.
    pub fn issue(&self, terminal: u32, now_ms: u64) -> Bytes {
        if self.lifetime.is_zero() {
            return Bytes::new();
        }
        let lifetime_ms = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        let expires = now_ms.saturating_add(lifetime_ms);
        let mut token = BytesMut::with_capacity(TOKEN_LEN);
        token.put_u8(VERSION);
        token.put_u32(self.key.epoch);
        token.put_u32(terminal);
        token.put_u64(expires);
        let tag = self.key.tag(&token);
        token.put_slice(&tag);
        token.freeze()
    }

    /// Checks that `token` is a genuine, unexpired credential of `terminal`
    /// at `now_ms` (Unix ms). Whether the terminal may still log in
    /// (disabled, removed) is the caller's to check.
    pub fn check(&self, token: &[u8], terminal: u32, now_ms: u64) -> Result<(), ResumeRefusal> {
        if self.lifetime.is_zero() {
            return Err(ResumeRefusal::Off);
        }
        if token.len() != TOKEN_LEN || token[0] != VERSION {
            return Err(ResumeRefusal::Malformed);
        }
        let (signed, tag) = token.split_at(SIGNED_LEN);
        let field = |at: usize, len: usize| &signed[at..at + len];
        let epoch = u32::from_be_bytes(
            field(1, 4)
                .try_into()
                .map_err(|_| ResumeRefusal::Malformed)?,
        );
        let named = u32::from_be_bytes(
            field(5, 4)
                .try_into()
                .map_err(|_| ResumeRefusal::Malformed)?,
        );
        let expires = u64::from_be_bytes(
            field(9, 8)
                .try_into()
                .map_err(|_| ResumeRefusal::Malformed)?,
        );
        if epoch != self.key.epoch {
            return Err(ResumeRefusal::OtherKey);
        }
        if !constant_time_eq(&self.key.tag(signed), tag) {
            return Err(ResumeRefusal::Forged);
        }
        if named != terminal {
            return Err(ResumeRefusal::OtherTerminal);
        }
        let lifetime_ms = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        if expires <= now_ms || expires - now_ms > lifetime_ms {
            return Err(ResumeRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const NOW: u64 = 1_750_000_000_000;

    fn resumption() -> Resumption {
        Resumption::new(ResumeKey::from_parts(7, [0x42; 32]), DAY)
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_credential_checks_for_its_terminal_until_it_expires() {
        let r = resumption();
        let token = r.issue(1001, NOW);
        assert_eq!(token.len(), TOKEN_LEN);
        assert_eq!(r.check(&token, 1001, NOW), Ok(()));
        assert_eq!(r.check(&token, 1001, NOW + 3_600_000), Ok(()));
        assert_eq!(
            r.check(&token, 1002, NOW),
            Err(ResumeRefusal::OtherTerminal)
        );
        let day_ms = 24 * 3_600_000;
        assert_eq!(
            r.check(&token, 1001, NOW + day_ms),
            Err(ResumeRefusal::Expired)
        );
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let r = resumption();
        let token = r.issue(1001, NOW);
        for at in 0..TOKEN_LEN {
            let mut altered = token.to_vec();
            altered[at] ^= 0x01;
            let refused = r.check(&altered, 1001, NOW).unwrap_err();
            assert!(
                !refused.is_stale() || (1..5).contains(&at),
                "byte {at}: {refused:?}"
            );
        }
        // Altering the id or the expiry breaks the tag, not just the field.
        let mut other_terminal = token.to_vec();
        other_terminal[8] ^= 0x01;
        assert_eq!(
            r.check(&other_terminal, 1001 ^ 0x01, NOW),
            Err(ResumeRefusal::Forged)
        );
        let mut longer = token.to_vec();
        longer[12] = 0xff;
        assert_eq!(r.check(&longer, 1001, NOW), Err(ResumeRefusal::Forged));
        assert_eq!(
            r.check(&token[..20], 1001, NOW),
            Err(ResumeRefusal::Malformed)
        );
        assert_eq!(r.check(b"", 1001, NOW), Err(ResumeRefusal::Malformed));
    }

    #[test]
    fn another_key_or_a_shorter_lifetime_refuses_old_credentials() {
        let token = resumption().issue(1001, NOW);
        let rotated = Resumption::new(ResumeKey::from_parts(8, [0x42; 32]), DAY);
        assert_eq!(
            rotated.check(&token, 1001, NOW),
            Err(ResumeRefusal::OtherKey)
        );
        let same_epoch_other_secret = Resumption::new(ResumeKey::from_parts(7, [0x43; 32]), DAY);
        assert_eq!(
            same_epoch_other_secret.check(&token, 1001, NOW),
            Err(ResumeRefusal::Forged)
        );
        let shorter = Resumption::new(ResumeKey::from_parts(7, [0x42; 32]), DAY / 24);
        assert_eq!(
            shorter.check(&token, 1001, NOW),
            Err(ResumeRefusal::Expired),
            "issued for longer than the relay now allows"
        );
        let off = Resumption::new(ResumeKey::from_parts(7, [0x42; 32]), Duration::ZERO);
        assert!(off.issue(1001, NOW).is_empty());
        assert_eq!(off.check(&token, 1001, NOW), Err(ResumeRefusal::Off));
    }

    #[test]
    fn generated_keys_differ_and_debug_hides_the_secret() {
        let a = ResumeKey::generate().unwrap();
        let b = ResumeKey::generate().unwrap();
        assert_ne!(a.secret(), b.secret());
        let shown = format!("{a:?}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
