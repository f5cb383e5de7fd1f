//! A token bucket: what the per-session limits are made of (`rate`, and the
//! positions forwarded to the control room). Many requests are fanned out to
//! every dispatcher or logged, so one radio that misbehaves must not fill
//! the consoles' control queues (which would cut them off) or the history.

use std::time::Instant;

/// Up to `burst` messages at once, then `per_second` on average.
#[derive(Debug)]
pub(super) struct Bucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(super) fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket {
            per_second: 10.0,
            burst: 5.0,
            tokens: 5.0,
            at: start,
        };
        let taken = (0..20).filter(|_| bucket.take(start)).count();
        assert_eq!(taken, 5, "the burst");
        let later = start + Duration::from_millis(500);
        let taken = (0..20).filter(|_| bucket.take(later)).count();
        assert_eq!(taken, 5, "half a second at 10/s");
    }
}
