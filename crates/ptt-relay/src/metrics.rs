//! Counters of what the relay did and what it refused, readable at any time
//! without stopping the hot path (relaxed atomics, no locks).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a voice datagram was not forwarded. Every drop is counted by reason so
/// operators can tell a misconfigured terminal from an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Larger than the protocol's maximum datagram.
    TooLarge,
    /// The 24-byte header is missing, of another version or of an unknown kind.
    BadHeader,
    /// The payload is not a valid Opus packet.
    NotOpus,
    /// The group id names no group.
    UnknownGroup,
    /// The sender does not hold the floor of the group.
    NotHolder,
}

impl DropReason {
    /// All reasons, in the order of [`DropReason::index`].
    pub const ALL: [DropReason; 5] = [
        DropReason::TooLarge,
        DropReason::BadHeader,
        DropReason::NotOpus,
        DropReason::UnknownGroup,
        DropReason::NotHolder,
    ];

    /// Stable label for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::TooLarge => "too_large",
            DropReason::BadHeader => "bad_header",
            DropReason::NotOpus => "not_opus",
            DropReason::UnknownGroup => "unknown_group",
            DropReason::NotHolder => "not_holder",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The relay's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Voice datagrams received from terminals.
    pub datagrams_in: Counter,
    /// Voice datagrams handed to a listener's connection.
    pub forwarded: Counter,
    /// Datagrams a listener's connection refused (closed, or no datagram support).
    pub send_failed: Counter,
    drops: [Counter; DropReason::ALL.len()],
    /// Control messages that could not be decoded.
    pub malformed_control: Counter,
    /// Terminals disconnected for misbehaving or being too slow.
    pub cut_off: Counter,
    /// Authentications that failed (unknown terminal, wrong secret).
    pub auth_failures: Counter,
    /// Authentications refused unchecked because the source address failed
    /// too often.
    pub auth_rate_limited: Counter,
    /// Sessions authenticated since start.
    pub sessions_opened: Counter,
    /// Call log records dropped because the log queue was full.
    pub log_dropped: Counter,
}

impl Metrics {
    /// Counts one dropped datagram.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason.index()].inc();
    }

    /// Datagrams dropped for `reason` since start.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].get()
    }
}
