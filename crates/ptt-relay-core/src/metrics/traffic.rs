//! The relay's own view of each group's voice, beside what the terminals
//! report ([`super::quality`]): frames fanned out, datagrams handed to the
//! listeners' connections, and datagrams a connection refused. A dashboard
//! compares these with the clients' claims.
//!
//! Each group keeps its own counters (`GroupShared`), so the fan-out counts
//! once per frame (not per listener) with three relaxed adds on a group it
//! already holds: no lookup, no lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// One group's relay-side counters.
#[derive(Debug, Default)]
pub struct GroupTraffic {
    frames: AtomicU64,
    handed: AtomicU64,
    refused: AtomicU64,
}

impl GroupTraffic {
    /// Counts one frame fanned out: `handed` datagrams went to listeners'
    /// connections, `refused` were refused by theirs.
    #[inline]
    pub fn count_frame(&self, handed: u64, refused: u64) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.count_handed(handed, refused);
    }

    /// Counts datagrams of a frame already counted, handed or refused by
    /// another shard's listeners.
    #[inline]
    pub fn count_handed(&self, handed: u64, refused: u64) {
        self.handed.fetch_add(handed, Ordering::Relaxed);
        if refused > 0 {
            self.refused.fetch_add(refused, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> GroupTrafficFigures {
        GroupTrafficFigures {
            frames_forwarded: self.frames.load(Ordering::Relaxed),
            datagrams_handed: self.handed.load(Ordering::Relaxed),
            datagrams_refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// One group's relay-side counts since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupTrafficFigures {
    /// Voice frames of the group the relay fanned out (each once, whatever
    /// the number of listeners).
    pub frames_forwarded: u64,
    /// Datagrams handed to the listeners' connections (frames × listeners
    /// reached). quinn may still drop one of them when a listener's send
    /// queue overflows: see `Metrics::listener_queue_dropped`.
    pub datagrams_handed: u64,
    /// Datagrams a listener's connection refused (closed, or no datagram
    /// support).
    pub datagrams_refused: u64,
}
