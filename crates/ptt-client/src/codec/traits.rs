//! The encoder and decoder traits every backend implements.

use super::config::CodecConfig;
use super::error::CodecError;

/// Turns 20 ms of 16 kHz mono PCM into one Opus packet. One encoder per
/// talk direction; it keeps state across frames, so feed frames in order.
pub trait VoiceEncoder: Send {
    /// Encodes exactly [`FRAME_SAMPLES`](super::FRAME_SAMPLES) samples into
    /// `out` and returns the packet length. `out` should hold
    /// [`MAX_PACKET_LEN`](super::MAX_PACKET_LEN) bytes; the packet is one
    /// code-0 Opus packet of 20 ms.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;

    /// The settings this encoder runs with.
    fn config(&self) -> &CodecConfig;
}

/// Turns Opus packets (or their absence) back into 16 kHz mono PCM. One
/// decoder per talker stream: it keeps state across frames, which is what
/// makes concealment sound continuous.
pub trait VoiceDecoder: Send {
    /// Decodes one frame into `out` and returns the samples written
    /// ([`FRAME_SAMPLES`](super::FRAME_SAMPLES) for our packets).
    ///
    /// - `packet = Some(p), fec = false`: decode `p`.
    /// - `packet = Some(next), fec = true`: the frame *before* `next` was lost;
    ///   rebuild it from the FEC copy `next` carries (concealment when it
    ///   carries none). `next` itself is not consumed: decode it normally
    ///   on the following call.
    /// - `packet = None`: the frame was lost and nothing follows yet;
    ///   conceal 20 ms (packet loss concealment). `fec` is ignored.
    ///
    /// Untrusted packets are validated first (RFC 6716 §3.4) and never make
    /// this panic.
    fn decode(
        &mut self,
        packet: Option<&[u8]>,
        fec: bool,
        out: &mut [i16],
    ) -> Result<usize, CodecError>;
}
