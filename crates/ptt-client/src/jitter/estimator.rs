//! The interarrival jitter estimate and the target delay derived from it.

use std::time::{Duration, Instant};

use super::config::JitterConfig;
use crate::codec::FRAME_DURATION;

/// Cap on one interarrival deviation fed to the estimator, µs: a sender clock
/// jump must not make the target delay jump to its maximum for minutes.
const MAX_DEVIATION_US: f64 = 1_000_000.0;

/// RFC 3550 §6.4.1 interarrival jitter: J += (|D| − J) / 16, with D the
/// change in transit time between consecutive arrivals.
#[derive(Debug, Default)]
pub(super) struct JitterEstimator {
    pub(super) jitter_us: f64,
    /// Arrival time and sender timestamp of the previous arrival of this
    /// burst (transit times of different bursts are not comparable: the
    /// sender may differ).
    pub(super) last: Option<(Instant, u64)>,
}

impl JitterEstimator {
    pub(super) fn on_arrival(&mut self, now: Instant, sender_us: u64) {
        if let Some((then, then_sender_us)) = self.last {
            let arrival = signed_us(now, then);
            // Two's-complement difference: a timestamp that went backwards is
            // a negative step, not a huge one.
            let sent = sender_us.wrapping_sub(then_sender_us) as i64 as f64;
            let d = (arrival - sent).abs().min(MAX_DEVIATION_US);
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last = Some((now, sender_us));
    }
}

/// `a - b` in µs, signed (arrivals may be pushed with a `now` that is not
/// monotonic; that must not panic).
fn signed_us(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64() * 1e6,
        None => -(b.saturating_duration_since(a).as_secs_f64() * 1e6),
    }
}

/// clamp(k × jitter + one frame, min, max).
pub(super) fn target(config: &JitterConfig, jitter_us: f64) -> Duration {
    let us = config.jitter_factor * jitter_us + FRAME_DURATION.as_secs_f64() * 1e6;
    // `us` is finite and non-negative; `max_delay` bounds it before the cast
    // matters.
    let raw = Duration::from_micros(us.min(u64::MAX as f64 / 2.0) as u64);
    raw.clamp(config.min_delay, config.max_delay)
}
