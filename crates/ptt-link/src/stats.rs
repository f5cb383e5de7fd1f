//! What the proxy did, per direction: live counters and their snapshots.

use std::sync::atomic::{AtomicU64, Ordering};

/// What one direction did since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Packets that reached the proxy.
    pub received: u64,
    /// Packets sent on (duplicates included).
    pub forwarded: u64,
    /// Packets dropped by the loss probability.
    pub lost: u64,
    /// Packets dropped because the direction was blacked out (on arrival or
    /// while waiting for their delay).
    pub blacked_out: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Packets dropped because the proxy's queues were full.
    pub overflowed: u64,
}

impl DirectionStats {
    /// Packets dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.lost + self.blacked_out + self.overflowed
    }
}

/// What the proxy did, both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Terminal to relay.
    pub to_relay: DirectionStats,
    /// Relay to terminal.
    pub to_client: DirectionStats,
}

/// The live counters of one direction.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) blacked_out: AtomicU64,
    pub(crate) duplicated: AtomicU64,
    pub(crate) overflowed: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            lost: get(&self.lost),
            blacked_out: get(&self.blacked_out),
            duplicated: get(&self.duplicated),
            overflowed: get(&self.overflowed),
        }
    }
}
