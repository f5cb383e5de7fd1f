//! Encoder settings within the terminal profile: the accepted ranges,
//! [`CodecConfig`] and why a configuration is refused.

use std::ops::RangeInclusive;

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
