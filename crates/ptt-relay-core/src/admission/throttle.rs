//! At most one log line per interval for a repeated event, with the number
//! of lines held back since the last one, so a flood of refused connections
//! cannot flood the log (a small twin of the ops port's `LogThrottle`, on
//! the monotonic clock).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lets one line through per [`LogThrottle::INTERVAL`] and counts the others.
#[derive(Debug, Default)]
pub(super) struct LogThrottle(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// Before this, nothing more is logged.
    next: Option<Instant>,
    /// Lines held back since the last one logged.
    held_back: u64,
}

impl LogThrottle {
    /// One line every ten seconds at most, per event.
    pub(super) const INTERVAL: Duration = Duration::from_secs(10);

    /// `Some(n)` if a line may be logged at `now`, `n` being the lines held
    /// back since the last one; `None` (and counted) otherwise.
    pub(super) fn allow(&self, now: Instant) -> Option<u64> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.next.is_some_and(|next| now < next) {
            state.held_back += 1;
            return None;
        }
        state.next = Some(now + Self::INTERVAL);
        Some(std::mem::take(&mut state.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let throttle = LogThrottle::default();
        let start = Instant::now();
        assert_eq!(throttle.allow(start), Some(0));
        assert_eq!(throttle.allow(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(start + Duration::from_secs(9)), None);
        assert_eq!(throttle.allow(start + LogThrottle::INTERVAL), Some(2));
        assert_eq!(
            throttle.allow(start + LogThrottle::INTERVAL + Duration::from_secs(1)),
            None
        );
    }
}
