//! Why an encode or decode call failed.

/// Why an encode or decode call failed. None of these poisons the codec: the
/// caller drops the frame (or conceals it) and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The backend refused to create an encoder or decoder. A bug or an
    /// unusable build: report it; there is nothing to retry.
    #[error("cannot create codec: {0}")]
    Init(String),
    /// `encode` was given other than [`FRAME_SAMPLES`](super::FRAME_SAMPLES) samples. Buffer the
    /// capture until a whole 20 ms frame is there.
    #[error("frame of {0} samples; exactly 320 expected")]
    FrameSize(usize),
    /// The output buffer cannot hold the result (`need` bytes or samples).
    /// Give [`MAX_PACKET_LEN`](super::MAX_PACKET_LEN) bytes to encode and
    /// [`FRAME_SAMPLES`](super::FRAME_SAMPLES) samples (or
    /// [`MAX_DECODE_SAMPLES`](super::MAX_DECODE_SAMPLES) for foreign packets)
    /// to decode.
    #[error("output buffer of {got} too small, need {need}")]
    OutputTooSmall {
        /// Length of the buffer given.
        got: usize,
        /// Length needed.
        need: usize,
    },
    /// The packet is not valid Opus (RFC 6716 §3.4) and was not fed to the
    /// decoder. Drop it and conceal the frame as lost.
    #[error("invalid Opus packet: {0}")]
    InvalidPacket(#[from] ptt_proto::opus::OpusError),
    /// The backend reported an error for this frame. Drop the frame (conceal
    /// it when decoding); the codec stays usable.
    #[error("codec error: {0}")]
    Backend(String),
    /// The backend panicked on this input. The panic was caught and the
    /// codec state rebuilt (so the next frame starts from a clean state, like
    /// after a long loss); treat the frame as lost. Worth a bug report
    /// upstream with the packet attached.
    #[error("codec panicked and was reset: {0}")]
    Panicked(String),
}
