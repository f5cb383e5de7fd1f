//! This machine's wall clock as the protocol counts time: Unix µs.

use std::time::{SystemTime, UNIX_EPOCH};

/// This machine's clock in Unix µs (0 before 1970, which never happens).
pub(crate) fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
