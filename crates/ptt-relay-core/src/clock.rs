//! The relay's clock: a monotonic epoch for the hot path (plain integers that
//! fit an atomic) and its mapping to Unix time for logs and messages.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A monotonic start point paired with the wall-clock time it was taken.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    epoch_unix: Duration,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Self {
        Self {
            epoch: Instant::now(),
            epoch_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// Milliseconds since the epoch: cheap, monotonic, fits an atomic.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.ms(Instant::now())
    }

    /// Milliseconds from the epoch to `at`.
    #[inline]
    pub fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant `ms` milliseconds after the epoch.
    pub fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// Unix time in milliseconds of a monotonic instant.
    pub fn unix_ms(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.epoch);
        i64::try_from((self.epoch_unix + since).as_millis()).unwrap_or(i64::MAX)
    }

    /// Unix time in microseconds now (wall clock).
    pub fn unix_us_now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or_default()
    }
}
