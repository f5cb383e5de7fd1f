//! The relay's own view of each group's voice, beside what the terminals
//! report ([`super::quality`]): frames fanned out, datagrams handed to the
//! listeners' connections, and datagrams a connection refused. A dashboard
//! compares these with the clients' claims.
//!
//! The fan-out counts into it once per frame (not per listener): one
//! sharded-map read and three relaxed adds. Entries are created on a
//! group's first frame; only groups that exist reach the fan-out, so the
//! map (and the metric labels) stay bounded by the configured groups.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

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

/// Every group's relay-side counters.
#[derive(Debug, Default)]
pub struct Traffic {
    groups: DashMap<u32, GroupTraffic>,
}

impl Traffic {
    /// Counts one frame of group `id` fanned out (see
    /// [`GroupTraffic::count_frame`]); the group's counters are created on
    /// its first frame.
    #[inline]
    pub fn count_frame(&self, id: u32, handed: u64, refused: u64) {
        if let Some(group) = self.groups.get(&id) {
            return group.count_frame(handed, refused);
        }
        self.groups
            .entry(id)
            .or_default()
            .count_frame(handed, refused);
    }

    /// The counts of group `id`, `None` before its first frame.
    pub fn group(&self, id: u32) -> Option<GroupTrafficFigures> {
        self.groups.get(&id).map(|group| group.snapshot())
    }

    /// Every group's counts, sorted by group id.
    pub fn all(&self) -> Vec<(u32, GroupTrafficFigures)> {
        let mut out: Vec<(u32, GroupTrafficFigures)> = self
            .groups
            .iter()
            .map(|entry| (*entry.key(), entry.value().snapshot()))
            .collect();
        out.sort_unstable_by_key(|&(id, _)| id);
        out
    }
}
