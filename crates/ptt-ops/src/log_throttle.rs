//! A warning let through once a minute at most, with the count of those held back.

use std::sync::atomic::{AtomicU64, Ordering};

/// Lets one warning through per [`LogThrottle::INTERVAL_MS`] and counts the others, so a
/// client repeating a refused request cannot fill the log.
#[derive(Debug, Default)]
pub struct LogThrottle {
    /// Relay-clock ms before which nothing more is logged.
    next_ms: AtomicU64,
    unlogged: AtomicU64,
}

impl LogThrottle {
    /// One line a minute at most.
    pub const INTERVAL_MS: u64 = 60_000;

    /// `Some(n)` if a line may be logged at `now_ms`, `n` being the lines held back since
    /// the last one; `None` (and counted) otherwise.
    pub fn allow(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + Self::INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.unlogged.swap(0, Ordering::Relaxed));
        }
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_lets_one_line_a_minute_through_and_counts_the_rest() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.allow(1_000), Some(0));
        assert_eq!(throttle.allow(2_000), None);
        assert_eq!(throttle.allow(60_999), None);
        assert_eq!(throttle.allow(61_000), Some(2));
        assert_eq!(throttle.allow(61_001), None);
    }
}
