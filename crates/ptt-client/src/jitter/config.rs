//! The tuning of a jitter buffer and how out-of-range values are brought
//! into range.

use std::time::Duration;

use crate::codec::FRAME_DURATION;

/// Tuning of a [`JitterBuffer`](super::JitterBuffer). Out-of-range values
/// are brought into range by [`JitterBuffer::new`](super::JitterBuffer::new)
/// (documented per field) rather than refused, since every value has a safe
/// nearest neighbour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Smallest target delay. Default 20 ms (one frame): below that every
    /// scheduling hiccup of the receiver would be a loss.
    pub min_delay: Duration,
    /// Largest target delay. Default 200 ms: past that a push-to-talk
    /// exchange feels laggy (MCPTT mouth-to-ear budget is 300 ms end to end).
    /// Raised to `min_delay` if below it.
    pub max_delay: Duration,
    /// k in target = k × jitter + 20 ms. Default 3. Non-finite or negative
    /// values become 0.
    pub jitter_factor: f64,
    /// Most frames held at once, the horizon for reordering. Default 64
    /// (1.28 s). Clamped to 16..=4096, and to at least `max_delay` worth of
    /// frames plus 8.
    pub capacity: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            jitter_factor: 3.0,
            capacity: 64,
        }
    }
}

impl JitterConfig {
    /// This configuration with every field brought into its documented range.
    pub(super) fn normalised(mut self) -> Self {
        self.max_delay = self.max_delay.max(self.min_delay);
        if !self.jitter_factor.is_finite() || self.jitter_factor < 0.0 {
            self.jitter_factor = 0.0;
        }
        let max_delay_frames = (self.max_delay.as_micros() / FRAME_DURATION.as_micros())
            .try_into()
            .unwrap_or(usize::MAX);
        self.capacity = self
            .capacity
            .max(max_delay_frames.saturating_add(8))
            .clamp(16, 4096);
        self
    }
}
