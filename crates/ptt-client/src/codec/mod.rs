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

mod config;
mod error;
mod frame;
#[cfg(feature = "libopus")]
pub mod libopus;
pub mod opus_rs;
pub mod signal;
mod traits;

pub use config::{BITRATE_RANGE, COMPLEXITY_RANGE, CodecConfig, ConfigError, LOSS_PERCENT_RANGE};
pub use error::CodecError;
pub use frame::{FRAME_DURATION, FRAME_SAMPLES, MAX_DECODE_SAMPLES, MAX_PACKET_LEN, SAMPLE_RATE};
pub use traits::{VoiceDecoder, VoiceEncoder};

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
