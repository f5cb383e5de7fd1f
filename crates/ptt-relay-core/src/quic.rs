//! QUIC transport settings of the relay (proto/voice.md, "Transport").
//!
//! Voice is live: a frame that cannot be sent within a few tens of
//! milliseconds is worth less than the next one, so each connection's
//! datagram send buffer holds only `datagram_queue` worth of audio and quinn
//! drops the oldest datagram when it is full. Keep-alives and a short idle
//! timeout let the relay notice a dead terminal (battery out, out of
//! coverage) in seconds, which frees its floor.
//!
//! The other way round, terminals learn at once that the relay they talk to
//! lost its state (killed, crashed, restarted): the relay answers packets of
//! connections it does not know with a stateless reset (RFC 9000 §10.3)
//! signed with a [`ResetKey`] that survives restarts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{AckFrequencyConfig, IdleTimeout, TransportConfig, VarInt};
use rustls::crypto::tls13::{Hkdf, OkmBlock};

use crate::tls::{self, ResetKeyError};

/// Largest voice datagram the relay sends or accepts (header + one Opus
/// packet); see proto/voice.md.
pub const MAX_DATAGRAM: usize = ptt_proto::voice::MAX_DATAGRAM_SIZE;

/// Socket buffer the relay asks the kernel for, in each direction. One
/// socket carries every terminal's voice and acknowledgements: with the
/// default (~200 KiB) a short scheduling stall overflows it, the lost ACKs
/// shrink congestion windows, and voice is dropped. The kernel caps the
/// request at `net.core.rmem_max` / `wmem_max`.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// What quinn counts per queued datagram beyond its bytes.
const QUINN_DATAGRAM_OVERHEAD: usize = 32;

/// Flow-control window of one stream: the control stream carries small
/// messages (64 KiB at most each), so a larger window would only let a
/// client make the relay buffer more.
const STREAM_WINDOW: u32 = 128 * 1024;

/// Voice streams (voice.md §4) a terminal may have open at once: one per
/// burst it talks in, so a few are plenty; each is bounded by
/// [`STREAM_WINDOW`] and all together by the connection's window.
pub const VOICE_STREAMS: u32 = 4;

/// Bidirectional streams a browser may open: its WebTransport session's
/// CONNECT request and the control stream.
const BROWSER_BIDI_STREAMS: u32 = 2;

/// Unidirectional streams a browser may open: HTTP/3's control stream and
/// QPACK's two (RFC 9114 §6.2, RFC 9204 §4.2), with room to spare; the
/// console sends voice only in datagrams.
const BROWSER_UNI_STREAMS: u32 = 6;

/// One voice frame is 20 ms of audio.
const FRAME_MS: u64 = 20;

/// Voice datagrams a listener may receive before it must acknowledge
/// (QUIC ACK frequency extension; quinn peers support it). Every datagram
/// is ack-eliciting and QUIC's default acknowledges every second packet:
/// at 50 frames/s that is 25 ACK packets per second per listener for the
/// relay to receive, decrypt and process — half an incoming packet per
/// forward. Datagrams are never retransmitted, so acknowledging them late
/// loses nothing.
const ACK_ELICITING_THRESHOLD: u32 = 9;

/// The longest a listener may delay an acknowledgement when asked by the
/// relay: at 50 frames/s an ACK every 100 ms (5 frames) instead of every
/// 40 ms. It also lengthens the probe timeout of a lost control message by
/// the same amount, so it stays well inside MCPTT's 300 ms access time.
const MAX_ACK_DELAY: Duration = Duration::from_millis(100);

/// What the relay's transport needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TransportSettings {
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// How often an idle connection is probed so the idle timeout does not
    /// fire on a healthy but quiet terminal.
    pub keep_alive: Duration,
    /// How much audio a connection's datagram send queue may hold.
    pub datagram_queue: Duration,
    /// Upper bound on concurrently open connections.
    pub max_connections: u32,
}

impl TransportSettings {
    /// Bytes of datagram send buffer for `datagram_queue` of audio, counted
    /// in full-size datagrams (at least one). Real voice datagrams are far
    /// smaller, so the buffer holds several times the configured audio in
    /// typical frames: a talker granted after waiting sends its buffered
    /// audio (captured from the press) in one burst, and the listener's queue
    /// must take that burst without dropping its first syllable. Beyond it,
    /// quinn drops the oldest.
    pub fn datagram_send_buffer(&self) -> usize {
        let frames = (self.datagram_queue.as_millis() as u64 / FRAME_MS).max(1) as usize;
        frames * MAX_DATAGRAM + QUINN_DATAGRAM_OVERHEAD
    }

    fn transport_config(&self) -> Result<TransportConfig, quinn::VarIntBoundsExceeded> {
        let mut transport = TransportConfig::default();
        transport
            .max_idle_timeout(Some(IdleTimeout::try_from(self.idle_timeout)?))
            .keep_alive_interval(Some(self.keep_alive))
            .datagram_receive_buffer_size(Some(64 * MAX_DATAGRAM))
            .datagram_send_buffer_size(self.datagram_send_buffer())
            // One control stream per terminal, and a few voice streams
            // (voice.md §4: one per burst; a new burst may open before the
            // last one's FIN is read).
            .max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(VOICE_STREAMS))
            .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
            .receive_window(VarInt::from_u32(2 * STREAM_WINDOW));
        let mut ack_frequency = AckFrequencyConfig::default();
        ack_frequency
            .ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD))
            .max_ack_delay(Some(MAX_ACK_DELAY));
        transport.ack_frequency_config(Some(ack_frequency));
        Ok(transport)
    }

    /// Builds the quinn server configuration from the TLS configuration.
    pub fn server_config(
        &self,
        tls: rustls::ServerConfig,
    ) -> Result<quinn::ServerConfig, ServerConfigError> {
        let transport = self
            .transport_config()
            .map_err(|_| ServerConfigError::IdleTimeoutTooLong)?;
        self.server_config_with(tls, transport)
    }

    /// The quinn server configuration of the console port, where browsers
    /// speak WebTransport (HTTP/3): the terminals' transport, with room for
    /// the streams HTTP/3 opens besides the control stream (the CONNECT
    /// request's bidirectional stream; each side's HTTP/3 control and QPACK
    /// streams).
    pub fn browser_server_config(
        &self,
        tls: rustls::ServerConfig,
    ) -> Result<quinn::ServerConfig, ServerConfigError> {
        let mut transport = self
            .transport_config()
            .map_err(|_| ServerConfigError::IdleTimeoutTooLong)?;
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(BROWSER_BIDI_STREAMS))
            .max_concurrent_uni_streams(VarInt::from_u32(BROWSER_UNI_STREAMS));
        self.server_config_with(tls, transport)
    }

    fn server_config_with(
        &self,
        tls: rustls::ServerConfig,
        transport: TransportConfig,
    ) -> Result<quinn::ServerConfig, ServerConfigError> {
        let crypto =
            QuicServerConfig::try_from(tls).map_err(|_| ServerConfigError::NoInitialCipher)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(transport));
        config.max_incoming(self.max_connections as usize);
        Ok(config)
    }
}

/// Why the QUIC server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    /// The TLS configuration offers no cipher suite QUIC can use.
    #[error("the TLS configuration has no TLS 1.3 cipher suite usable by QUIC")]
    NoInitialCipher,
    /// The idle timeout does not fit QUIC's varint; choose a shorter one.
    #[error("idle timeout is too long for QUIC")]
    IdleTimeoutTooLong,
}

/// Length of HMAC-SHA256's output.
const SHA256_LEN: usize = 32;

/// Length of the connection ids the relay hands out: quinn's default. A
/// restarted relay reads the short headers of its predecessor's packets with
/// it, so it must not change between versions.
const CID_LEN: usize = 8;

/// What the reset key signs to derive the connection ids' tag key, so the
/// tags reveal nothing about the reset tokens.
const CID_TAG_LABEL: &[u8] = b"pttd connection id tag v1";

/// The secret behind the relay's stateless resets.
///
/// Every connection id the relay hands out comes with a reset token,
/// HMAC-SHA256(key, id). A relay that gets a packet of a connection it does
/// not know — because it was killed and started again — answers with a
/// stateless reset carrying that token; the terminal compares it with the
/// token it was given and drops the connection at once instead of waiting
/// for its idle timeout, then logs in again. That only works if the new
/// process has the old one's key, so the key is made once, kept in
/// `<data-dir>/pttd-reset.key` (mode 0600) and read at every start. Whoever
/// holds it can cut terminals off by spoofing the relay's address: it is
/// kept like the TLS key.
pub struct ResetKey {
    key: OkmBlock,
}

impl std::fmt::Debug for ResetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetKey(<redacted>)")
    }
}

impl ResetKey {
    /// Reads the key kept in `data_dir`, making it on first use (see
    /// [`tls::load_or_generate_reset_key`]).
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, ResetKeyError> {
        Ok(Self {
            key: tls::load_or_generate_reset_key(data_dir)?,
        })
    }

    /// The reset token of connection id `cid`: what the relay hands out with
    /// it and sends back in a stateless reset.
    #[cfg(test)]
    fn token(&self, cid: &[u8]) -> [u8; 16] {
        let mut signature = [0; SHA256_LEN];
        quinn::crypto::HmacKey::sign(&self.hmac(), cid, &mut signature);
        let mut token = [0; 16];
        token.copy_from_slice(&signature[..16]);
        token
    }

    fn hmac(&self) -> ResetHmac {
        ResetHmac {
            key: self.key.clone(),
            hkdf: sha256_hkdf(),
        }
    }

    /// The generator of the connection ids shard `shard` of this process
    /// hands out: a fresh nonce key, and the tag key every process with this
    /// reset key shares.
    fn connection_ids(&self, shard: u8) -> Result<ConnectionIds, ResetKeyError> {
        let mut seed = [0u8; SHA256_LEN];
        tls::fill_random(&mut seed)?;
        let hkdf = sha256_hkdf();
        let tag_key = hkdf.hmac_sign(&self.key, CID_TAG_LABEL);
        Ok(ConnectionIds {
            nonce_key: OkmBlock::new(&seed),
            tag_key: OkmBlock::new(tag_key.as_ref()),
            hkdf,
            shard,
            next: 0,
        })
    }

    /// The quinn endpoint configuration of shard `shard` (0 with one
    /// shard), which resets with this key.
    ///
    /// Two more quinn defaults are replaced. Its connection ids carry a tag
    /// under a per-process key and packets whose id has no valid tag are
    /// dropped unanswered: a restarted relay would drop exactly the packets
    /// it must reset. [`ConnectionIds`] tag them under a key derived from
    /// the kept reset key instead, so the new process recognises its
    /// predecessor's ids and nothing else. And quinn sends at most one
    /// reset per 20 ms — in fact one per receive poll, which reads the clock
    /// once for a whole batch — so when a crash during a call has lined up
    /// the keep-alives of a fleet, all terminals but one would go unanswered
    /// and back off for seconds: the interval is zero. Each reset is smaller
    /// than the packet that caused it, so this amplifies nothing, and since
    /// only packets with our own ids are answered, a service that answers
    /// any datagram cannot draw the relay into a loop.
    ///
    /// Every id starts with the shard's index, so the kernel hands each
    /// packet to the shard that owns its connection ([`crate::shard`]).
    pub fn endpoint_config(&self, shard: u8) -> Result<quinn::EndpointConfig, ResetKeyError> {
        let ids = self.connection_ids(shard)?;
        let mut config = quinn::EndpointConfig::new(Arc::new(self.hmac()));
        config
            .cid_generator(move || Box::new(ids.clone()))
            .min_reset_interval(Duration::ZERO);
        Ok(config)
    }
}

/// HMAC-SHA256 as the TLS stack computes it (ring, through rustls): quinn
/// implements its key trait only for `ring::hmac::Key`, and this crate does
/// not depend on ring directly.
fn sha256_hkdf() -> &'static dyn Hkdf {
    match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13() {
        Some(suite) => suite.hkdf_provider,
        None => unreachable!("TLS13_AES_128_GCM_SHA256 is a TLS 1.3 suite"),
    }
}

/// HMAC-SHA256 under one key.
#[derive(Clone)]
struct ResetHmac {
    key: OkmBlock,
    hkdf: &'static dyn Hkdf,
}

impl quinn::crypto::HmacKey for ResetHmac {
    fn sign(&self, data: &[u8], signature_out: &mut [u8]) {
        signature_out.copy_from_slice(self.hkdf.hmac_sign(&self.key, data).as_ref());
    }

    fn signature_len(&self) -> usize {
        SHA256_LEN
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        let expected = self.hkdf.hmac_sign(&self.key, data);
        let expected = expected.as_ref();
        // Constant time: every byte is compared whatever the first mismatch.
        let differ = expected.len() != signature.len()
            || expected
                .iter()
                .zip(signature)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differ {
            Err(quinn::crypto::CryptoError)
        } else {
            Ok(())
        }
    }
}

/// Connection ids whose last bytes vouch for them: the index of the shard
/// that issued them (which core serves the connection, as QUIC-LB's server
/// id says which server does), a nonce of [`CID_NONCE_LEN`] bytes
/// (HMAC-SHA256 of a counter under a per-process random key, so ids are
/// unpredictable and unlinkable, as RFC 9000 §5.1 asks), and a tag of
/// [`CID_TAG_LEN`] bytes, HMAC-SHA256 of shard and nonce under a key derived
/// from the kept reset key. Any relay process with that key can tell an id
/// it (or its predecessor) issued from a random one, so quinn answers a
/// stateless reset only to packets of connections that were really ours:
/// forged short-header packets get no answer, and no reset loop with
/// another endpoint can start.
///
/// The nonce keeps 32 bits: quinn does not check the id of a Retry against
/// the ids in use, and with 24 (the shard byte taken out of the nonce) a
/// 5,000-terminal login storm drew ~9 Retry ids equal to a live
/// connection's, whose terminals then never connected. Ids of a relay from
/// before shards (a 4-byte nonce and a 4-byte tag) still validate, so the
/// first restart after an upgrade resets its predecessor's terminals too.
#[derive(Clone)]
struct ConnectionIds {
    nonce_key: OkmBlock,
    tag_key: OkmBlock,
    hkdf: &'static dyn Hkdf,
    /// The issuing shard: the ids' first byte.
    shard: u8,
    next: u64,
}

/// Bytes of a connection id's nonce, after its shard byte.
const CID_NONCE_LEN: usize = 4;

/// Bytes of the shard and the nonce together: what the tag signs.
const CID_SIGNED_LEN: usize = 1 + CID_NONCE_LEN;

/// Bytes of a connection id's tag, its last.
const CID_TAG_LEN: usize = CID_LEN - CID_SIGNED_LEN;

/// Bytes of the nonce of ids issued before shards: the tag had the rest.
const LEGACY_NONCE_LEN: usize = 4;

impl ConnectionIds {
    /// Whether `tag` is the tag of `signed` (constant time: every byte is
    /// compared whatever the first mismatch).
    fn tag_matches(&self, signed: &[u8], tag: &[u8]) -> bool {
        let signature = self.hkdf.hmac_sign(&self.tag_key, signed);
        let expected = &signature.as_ref()[..tag.len()];
        expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl quinn::ConnectionIdGenerator for ConnectionIds {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        let nonce = self
            .hkdf
            .hmac_sign(&self.nonce_key, &self.next.to_be_bytes());
        self.next = self.next.wrapping_add(1);
        let mut id = [0; CID_LEN];
        let (signed, tag) = id.split_at_mut(CID_SIGNED_LEN);
        signed[0] = self.shard;
        signed[1..].copy_from_slice(&nonce.as_ref()[..CID_NONCE_LEN]);
        let signature = self.hkdf.hmac_sign(&self.tag_key, signed);
        tag.copy_from_slice(&signature.as_ref()[..CID_TAG_LEN]);
        quinn::ConnectionId::new(&id)
    }

    fn validate(&self, cid: &quinn::ConnectionId) -> Result<(), quinn_proto::InvalidCid> {
        if cid.len() != CID_LEN {
            return Err(quinn_proto::InvalidCid);
        }
        let (signed, tag) = cid.split_at(CID_SIGNED_LEN);
        let (legacy_nonce, legacy_tag) = cid.split_at(LEGACY_NONCE_LEN);
        if self.tag_matches(signed, tag) || self.tag_matches(legacy_nonce, legacy_tag) {
            Ok(())
        } else {
            Err(quinn_proto::InvalidCid)
        }
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_buffer_holds_the_configured_audio() {
        let settings = TransportSettings {
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            datagram_queue: Duration::from_millis(60),
            max_connections: 100,
        };
        // 60 ms = 3 full-size datagrams (~28 typical voice frames).
        assert_eq!(settings.datagram_send_buffer(), 3 * MAX_DATAGRAM + 32);
    }

    #[test]
    fn a_restarted_relay_signs_the_same_reset_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let first = ResetKey::load_or_generate(dir.path()).unwrap();
        let second = ResetKey::load_or_generate(dir.path()).unwrap();
        let cid = [7u8; CID_LEN];
        assert_eq!(first.token(&cid), second.token(&cid));
        assert_ne!(first.token(&cid), first.token(&[8u8; CID_LEN]));
        let elsewhere = tempfile::tempdir().unwrap();
        let other = ResetKey::load_or_generate(elsewhere.path()).unwrap();
        assert_ne!(first.token(&cid), other.token(&cid), "another relay's key");
        assert!(first.endpoint_config(0).is_ok());
    }

    #[test]
    fn the_reset_hmac_is_hmac_sha256() {
        // RFC 4231, test case 2.
        let hmac = ResetHmac {
            key: OkmBlock::new(b"Jefe"),
            hkdf: sha256_hkdf(),
        };
        let mut out = [0u8; SHA256_LEN];
        quinn::crypto::HmacKey::sign(&hmac, b"what do ya want for nothing?", &mut out);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let verify = |sig: &[u8]| {
            quinn::crypto::HmacKey::verify(&hmac, b"what do ya want for nothing?", sig)
        };
        assert!(verify(&out).is_ok());
        let mut wrong = out;
        wrong[31] ^= 1;
        assert!(verify(&wrong).is_err());
        assert!(verify(&out[..16]).is_err());
    }

    #[test]
    fn connection_ids_are_distinct_and_of_the_fixed_length() {
        use quinn::ConnectionIdGenerator;
        let dir = tempfile::tempdir().unwrap();
        let mut ids = ResetKey::load_or_generate(dir.path())
            .unwrap()
            .connection_ids(5)
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let cid = ids.generate_cid();
            assert_eq!(cid.len(), CID_LEN);
            assert_eq!(cid[0], 5, "the issuing shard comes first");
            assert!(seen.insert(cid), "a repeated id");
        }
        assert_eq!(ids.cid_len(), CID_LEN);
    }

    #[test]
    fn only_ids_issued_under_the_kept_key_are_worth_a_reset() {
        use quinn::ConnectionIdGenerator;
        let dir = tempfile::tempdir().unwrap();
        let mut before_crash = ResetKey::load_or_generate(dir.path())
            .unwrap()
            .connection_ids(0)
            .unwrap();
        // Another shard of the restarted relay gets the packet.
        let after_restart = ResetKey::load_or_generate(dir.path())
            .unwrap()
            .connection_ids(1)
            .unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let other_relay = ResetKey::load_or_generate(elsewhere.path())
            .unwrap()
            .connection_ids(0)
            .unwrap();
        let mut accepted_by_other = 0;
        for _ in 0..100 {
            let cid = before_crash.generate_cid();
            assert!(before_crash.validate(&cid).is_ok());
            assert!(
                after_restart.validate(&cid).is_ok(),
                "the restarted relay resets it"
            );
            accepted_by_other += usize::from(other_relay.validate(&cid).is_ok());
            let mut forged = [0u8; CID_LEN];
            forged.copy_from_slice(&cid);
            forged[CID_LEN - 1] ^= 1;
            assert!(
                after_restart
                    .validate(&quinn::ConnectionId::new(&forged))
                    .is_err()
            );
        }
        // A 24-bit tag (or the legacy 32-bit one): another key's ids pass
        // about once in sixteen million.
        assert_eq!(accepted_by_other, 0);
        // An id of a relay from before shards: 4-byte nonce, 4-byte tag.
        let legacy_nonce = [9u8, 8, 7, 6];
        let tag = after_restart
            .hkdf
            .hmac_sign(&after_restart.tag_key, &legacy_nonce);
        let mut legacy = [0u8; CID_LEN];
        legacy[..4].copy_from_slice(&legacy_nonce);
        legacy[4..].copy_from_slice(&tag.as_ref()[..4]);
        assert!(
            after_restart
                .validate(&quinn::ConnectionId::new(&legacy))
                .is_ok(),
            "a pre-shard predecessor's id is still reset"
        );
        let short = quinn::ConnectionId::new(&[1, 2, 3, 4]);
        assert!(after_restart.validate(&short).is_err());
    }
}
