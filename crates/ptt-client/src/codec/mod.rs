//! Opus codec behind one small trait.
//!
//! Every terminal speaks the same profile (`proto/voice.md` §3.2): Opus,
//! 16 kHz mono, VOIP application, one 20 ms frame (320 samples) per packet,
//! 16–24 kbit/s, in-band FEC on. The profile is fixed here rather than
//! configurable so that no terminal can pick a combination that a backend
//! mishandles (opus-rs 0.1.40 panics with FEC at 24/48 kHz, so the sample rate
//! is not a knob at all); [`CodecConfig`] only offers what was swept by the
//! tests.
//!
//! Two backends implement [`VoiceEncoder`] / [`VoiceDecoder`]:
//! - [`opus_rs`] (default): the pure-Rust `opus-rs` crate, pinned exactly; it
//!   builds with cargo alone.
//! - `libopus` (cargo feature `libopus`): the reference C libopus through the
//!   `opus` crate; needs cmake. Used to cross-check opus-rs.
//!
//! Pick one at run time with [`Backend`].
//!
//! ```
//! use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN};
//!
//! let mut enc = Backend::OpusRs.encoder(CodecConfig::default())?;
//! let mut dec = Backend::OpusRs.decoder()?;
//! let pcm = [0i16; FRAME_SAMPLES];
//! let mut packet = [0u8; MAX_PACKET_LEN];
//! let len = enc.encode(&pcm, &mut packet)?;
//! let mut out = [0i16; FRAME_SAMPLES];
//! assert_eq!(dec.decode(Some(&packet[..len]), false, &mut out)?, FRAME_SAMPLES);
//! // The next packet was lost: conceal it.
//! assert_eq!(dec.decode(None, false, &mut out)?, FRAME_SAMPLES);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::RangeInclusive;
use std::time::Duration;

#[cfg(feature = "libopus")]
pub mod libopus;
pub mod opus_rs;
pub mod signal;

/// Sample rate of every voice frame, Hz. Wideband: speech intelligibility
/// needs the 4–8 kHz band that narrowband drops, and it is the highest rate at
/// which opus-rs's FEC is known to work.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples in one 20 ms mono frame at [`SAMPLE_RATE`]; the unit every encode
/// call consumes and every decode call produces.
pub const FRAME_SAMPLES: usize = 320;

/// Duration of one frame: the cadence of sending and of playout.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Largest Opus packet an encoder may produce: what fits in one voice
/// datagram after the 24-byte header (`ptt_proto::voice::MAX_PAYLOAD_LEN`).
/// Real packets at 24 kbit/s are about 60 bytes.
pub const MAX_PACKET_LEN: usize = ptt_proto::voice::MAX_PAYLOAD_LEN;

/// Most samples one decode call can produce: a 120 ms packet (the Opus
/// maximum) at 16 kHz. Our encoders only make 20 ms packets, but a decoder
/// must not fail on a longer, valid packet from another implementation when
/// the caller gave it room.
pub const MAX_DECODE_SAMPLES: usize = 1920;

/// Bitrates [`CodecConfig`] accepts, bit/s: the profile's 16–24 kbit/s.
/// Below 16 kbit/s wideband SILK loses intelligibility; above 24 kbit/s a
/// relay fanning out to hundreds of listeners pays for quality nobody hears
/// on a handheld speaker.
pub const BITRATE_RANGE: RangeInclusive<u32> = 16_000..=24_000;

/// Complexities [`CodecConfig`] accepts (Opus's own 0–10 scale): more costs
/// CPU, less costs quality.
pub const COMPLEXITY_RANGE: RangeInclusive<u8> = 0..=10;

/// Expected packet loss hints [`CodecConfig`] accepts, percent. The hint makes
/// the encoder spend bits on FEC; beyond 50 % voice is unusable anyway.
pub const LOSS_PERCENT_RANGE: RangeInclusive<u8> = 0..=50;

/// Encoder settings within the terminal profile. Constructed only through
/// [`CodecConfig::new`] (or `Default`), which rejects values outside the
/// ranges that were tested, so holding a `CodecConfig` means it is known to
/// work with every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodecConfig {
    bitrate_bps: u32,
    fec: bool,
    complexity: u8,
    expected_loss_percent: u8,
}

impl Default for CodecConfig {
    /// 24 kbit/s, FEC on, complexity 5, 10 % expected loss: the profile of
    /// `proto/voice.md` with room for FEC, at a CPU cost a phone or the load
    /// generator can afford for many streams.
    fn default() -> Self {
        Self {
            bitrate_bps: 24_000,
            fec: true,
            complexity: 5,
            expected_loss_percent: 10,
        }
    }
}

impl CodecConfig {
    /// Validates a configuration: `bitrate_bps` in [`BITRATE_RANGE`],
    /// `complexity` in [`COMPLEXITY_RANGE`]. The expected loss hint starts
    /// at 10 % with FEC on and 0 % with FEC off (without FEC the hint only
    /// costs bits); change it with [`CodecConfig::with_expected_loss`].
    pub fn new(bitrate_bps: u32, fec: bool, complexity: u8) -> Result<Self, ConfigError> {
        if !BITRATE_RANGE.contains(&bitrate_bps) {
            return Err(ConfigError::Bitrate(bitrate_bps));
        }
        if !COMPLEXITY_RANGE.contains(&complexity) {
            return Err(ConfigError::Complexity(complexity));
        }
        Ok(Self {
            bitrate_bps,
            fec,
            complexity,
            expected_loss_percent: if fec { 10 } else { 0 },
        })
    }

    /// Sets the expected packet loss hint (percent, [`LOSS_PERCENT_RANGE`]):
    /// the encoder spends more bits on FEC as it rises. Feed it from the
    /// loss the receivers report.
    pub fn with_expected_loss(mut self, percent: u8) -> Result<Self, ConfigError> {
        if !LOSS_PERCENT_RANGE.contains(&percent) {
            return Err(ConfigError::ExpectedLoss(percent));
        }
        self.expected_loss_percent = percent;
        Ok(self)
    }

    /// Target bitrate, bit/s.
    #[must_use]
    pub const fn bitrate_bps(&self) -> u32 {
        self.bitrate_bps
    }

    /// Whether each packet carries an in-band FEC copy of the previous frame.
    #[must_use]
    pub const fn fec(&self) -> bool {
        self.fec
    }

    /// Encoder complexity, 0–10.
    #[must_use]
    pub const fn complexity(&self) -> u8 {
        self.complexity
    }

    /// Expected packet loss hint, percent.
    #[must_use]
    pub const fn expected_loss_percent(&self) -> u8 {
        self.expected_loss_percent
    }
}

/// Why a [`CodecConfig`] was refused. The answer is always the same: pick a
/// value inside the documented range; the variant says which one was out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The bitrate is outside [`BITRATE_RANGE`].
    #[error("bitrate {0} bit/s outside 16000..=24000")]
    Bitrate(u32),
    /// The complexity is outside [`COMPLEXITY_RANGE`].
    #[error("complexity {0} outside 0..=10")]
    Complexity(u8),
    /// The loss hint is outside [`LOSS_PERCENT_RANGE`].
    #[error("expected loss {0} % outside 0..=50")]
    ExpectedLoss(u8),
}

/// Why an encode or decode call failed. None of these poisons the codec: the
/// caller drops the frame (or conceals it) and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The backend refused to create an encoder or decoder. A bug or an
    /// unusable build: report it; there is nothing to retry.
    #[error("cannot create codec: {0}")]
    Init(String),
    /// `encode` was given other than [`FRAME_SAMPLES`] samples. Buffer the
    /// capture until a whole 20 ms frame is there.
    #[error("frame of {0} samples; exactly 320 expected")]
    FrameSize(usize),
    /// The output buffer cannot hold the result (`need` bytes or samples).
    /// Give [`MAX_PACKET_LEN`] bytes to encode and [`FRAME_SAMPLES`] samples
    /// (or [`MAX_DECODE_SAMPLES`] for foreign packets) to decode.
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

/// Turns 20 ms of 16 kHz mono PCM into one Opus packet. One encoder per
/// talk direction; it keeps state across frames, so feed frames in order.
pub trait VoiceEncoder: Send {
    /// Encodes exactly [`FRAME_SAMPLES`] samples into `out` and returns the
    /// packet length. `out` should hold [`MAX_PACKET_LEN`] bytes; the packet
    /// is one code-0 Opus packet of 20 ms.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;

    /// The settings this encoder runs with.
    fn config(&self) -> &CodecConfig;
}

/// Turns Opus packets (or their absence) back into 16 kHz mono PCM. One
/// decoder per talker stream: it keeps state across frames, which is what
/// makes concealment sound continuous.
pub trait VoiceDecoder: Send {
    /// Decodes one frame into `out` and returns the samples written
    /// ([`FRAME_SAMPLES`] for our packets).
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

/// Which implementation of Opus to run. A run-time choice so the `ptt`
/// command and tests can switch without recompiling the callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// Pure-Rust opus-rs: builds everywhere with cargo alone.
    #[default]
    OpusRs,
    /// Reference libopus (feature `libopus`).
    #[cfg(feature = "libopus")]
    Libopus,
}

impl Backend {
    /// Every backend compiled in, for tests and benches that compare them.
    pub const ALL: &'static [Backend] = &[
        Backend::OpusRs,
        #[cfg(feature = "libopus")]
        Backend::Libopus,
    ];

    /// A new encoder of this backend.
    pub fn encoder(self, config: CodecConfig) -> Result<Box<dyn VoiceEncoder>, CodecError> {
        match self {
            Backend::OpusRs => Ok(Box::new(opus_rs::OpusRsEncoder::new(config)?)),
            #[cfg(feature = "libopus")]
            Backend::Libopus => Ok(Box::new(libopus::LibopusEncoder::new(config)?)),
        }
    }

    /// A new decoder of this backend.
    pub fn decoder(self) -> Result<Box<dyn VoiceDecoder>, CodecError> {
        match self {
            Backend::OpusRs => Ok(Box::new(opus_rs::OpusRsDecoder::new()?)),
            #[cfg(feature = "libopus")]
            Backend::Libopus => Ok(Box::new(libopus::LibopusDecoder::new()?)),
        }
    }
}

/// Checks an encoder's input: exactly one frame.
fn check_frame(pcm: &[i16]) -> Result<(), CodecError> {
    if pcm.len() == FRAME_SAMPLES {
        Ok(())
    } else {
        Err(CodecError::FrameSize(pcm.len()))
    }
}

/// Validates an untrusted packet and returns how many 16 kHz samples it
/// decodes to, checking that `out_len` has room for them.
fn packet_samples(packet: &[u8], out_len: usize) -> Result<usize, CodecError> {
    let info = ptt_proto::opus::parse(packet)?;
    // 48 kHz samples / 3 = 16 kHz samples; at most 5760 / 3 = 1920.
    let samples = info.samples_48k() as usize / 3;
    check_out(out_len, samples)?;
    Ok(samples)
}

/// Checks that a decode buffer holds `need` samples.
fn check_out(got: usize, need: usize) -> Result<(), CodecError> {
    if got < need {
        Err(CodecError::OutputTooSmall { got, need })
    } else {
        Ok(())
    }
}
