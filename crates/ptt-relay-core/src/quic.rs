//! QUIC transport settings of the relay (proto/voice.md, "Transport").
//!
//! Voice is live: a frame that cannot be sent within a few tens of
//! milliseconds is worth less than the next one, so each connection's
//! datagram send buffer holds only `datagram_queue` worth of audio and quinn
//! drops the oldest datagram when it is full. Keep-alives and a short idle
//! timeout let the relay notice a dead terminal (battery out, out of
//! coverage) in seconds, which frees its floor.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{AckFrequencyConfig, IdleTimeout, TransportConfig, VarInt};

/// Largest voice datagram the relay sends or accepts (header + one Opus
/// packet); see proto/voice.md.
pub const MAX_DATAGRAM: usize = ptt_proto::voice::MAX_DATAGRAM_SIZE;

/// Socket buffer the relay asks the kernel for, in each direction. One
/// socket carries every terminal's voice and acknowledgements: with the
/// default (~200 KiB) a short scheduling stall overflows it, the lost ACKs
/// shrink congestion windows, and voice is dropped. The kernel caps the
/// request at `net.core.rmem_max` / `wmem_max`.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Binds the relay's UDP socket with large buffers, ready for quinn.
pub fn bind_socket(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Serve IPv4-mapped peers too when bound to [::].
        let _ = socket.set_only_v6(false);
    }
    // Best effort: a smaller buffer still works, only less robustly.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// What quinn counts per queued datagram beyond its bytes.
const QUINN_DATAGRAM_OVERHEAD: usize = 32;

/// Flow-control window of one stream: the control stream carries small
/// messages (64 KiB at most each), so a larger window would only let a
/// client make the relay buffer more.
const STREAM_WINDOW: u32 = 128 * 1024;

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
            // One control stream per terminal. The voice stream fallback of
            // voice.md §4 is not served yet: no unidirectional streams, so
            // nothing can be buffered on them.
            .max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
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
        let crypto =
            QuicServerConfig::try_from(tls).map_err(|_| ServerConfigError::NoInitialCipher)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(
            self.transport_config()
                .map_err(|_| ServerConfigError::IdleTimeoutTooLong)?,
        ));
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
}
