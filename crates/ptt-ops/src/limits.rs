//! How much the ops port lets its clients hold: the settings of its connection cap,
//! header-read and idle timeouts, and the rate limit of wrong tokens.

use std::time::Duration;

/// The ops port's limits, from the relay's configuration (`ops-*` settings).
///
/// The defaults suit an ops port reached by a Prometheus scraper, a few browsers and an
/// admin script; `deploy/pttd.toml` explains each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsLimits {
    /// A connection must deliver a request's headers within this long, counted from the
    /// moment it waits for a request (its opening, or the end of the previous answer): a
    /// client that sends nothing, or its headers byte by byte, is closed after it.
    pub header_timeout: Duration,
    /// A connection whose request makes no progress either way (no byte read, none
    /// written) for this long is closed: a client that stops reading its answer or
    /// sending its body. A live event stream writes every second, so it is never idle.
    pub idle_timeout: Duration,
    /// Most connections served at once; one more is answered 503 and closed at once.
    pub max_connections: usize,
    /// Wrong tokens one address (an IPv6 /64) may present in a minute before every
    /// token it sends is answered 429 until its minute is over; 0 is no limit.
    pub token_failures_per_minute: u32,
    /// Wrong tokens all addresses together may present in a minute before every token
    /// is answered 429 until the minute is over; 0 is no limit.
    pub token_failures_per_minute_total: u32,
}

impl Default for OpsLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
            token_failures_per_minute: 20,
            token_failures_per_minute_total: 200,
        }
    }
}
