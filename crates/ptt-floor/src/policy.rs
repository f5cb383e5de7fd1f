//! The per-group timers and limits of a floor.

use std::time::Duration;

use crate::types::RequestKind;

/// Timers and limits of one floor (ARCHITECTURE §4; configurable per group).
///
/// A timer given as `None` or `Some(Duration::ZERO)` is disabled. Defaults:
///
/// | field | default | MCPTT |
/// |---|---|---|
/// | `talk_limit` | 60 s | T2 (30 s there) |
/// | `broadcast_talk_limit` | 120 s | — |
/// | `emergency_talk_limit` | 60 s | — |
/// | `revoke_grace` | 1 s | T8 |
/// | `media_inactivity` | 4 s | T1 |
/// | `queue_expiry` | 10 s | — |
/// | `queue_limit` | 128 | — |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloorPolicy {
    /// How long one normal burst may last before it is revoked, so a stuck
    /// transmit key cannot hold the group forever.
    pub talk_limit: Option<Duration>,
    /// The same for broadcasts (all-calls). Longer by default because a
    /// dispatcher reading out an instruction to everyone should not be cut at
    /// a minute, and nobody else can talk during it anyway.
    pub broadcast_talk_limit: Option<Duration>,
    /// The same for emergency bursts. Kept at the normal limit by default: a
    /// revoked emergency caller presses again and, the group still being in
    /// emergency, ranks first.
    pub emergency_talk_limit: Option<Duration>,
    /// After a talk-limit revoke, how long the holder's media is still
    /// forwarded (to finish a word) before the floor is taken from them.
    /// Zero ends the burst at once.
    pub revoke_grace: Duration,
    /// A holder that sends no media for this long loses the floor (the
    /// terminal crashed, lost coverage or keyed by mistake). Counted from the
    /// grant, then from each voice frame.
    pub media_inactivity: Option<Duration>,
    /// A queued request that has waited this long without moving up expires,
    /// so a terminal is not handed the floor long after its user gave up.
    /// The clock restarts each time the request moves up the queue: a queue
    /// that keeps draining (a hundred answers) never expires its tail.
    pub queue_expiry: Option<Duration>,
    /// At most this many queued requests; 0 disables queueing. When full, a
    /// request that outranks the lowest queued one displaces it (that one is
    /// denied `QueueFull`); otherwise the new request is denied `QueueFull`.
    /// Also the capacity preallocated for the queue and event buffers.
    pub queue_limit: usize,
}

impl Default for FloorPolicy {
    fn default() -> Self {
        FloorPolicy {
            talk_limit: Some(Duration::from_secs(60)),
            broadcast_talk_limit: Some(Duration::from_secs(120)),
            emergency_talk_limit: Some(Duration::from_secs(60)),
            revoke_grace: Duration::from_secs(1),
            media_inactivity: Some(Duration::from_secs(4)),
            queue_expiry: Some(Duration::from_secs(10)),
            queue_limit: 128,
        }
    }
}

impl FloorPolicy {
    /// A policy with every timer disabled (no talk limit, no inactivity, no
    /// expiry) and the default queue limit: useful for tests and for groups
    /// whose floor is policed elsewhere.
    #[must_use]
    pub fn without_timers() -> Self {
        FloorPolicy {
            talk_limit: None,
            broadcast_talk_limit: None,
            emergency_talk_limit: None,
            revoke_grace: Duration::ZERO,
            media_inactivity: None,
            queue_expiry: None,
            ..FloorPolicy::default()
        }
    }

    /// The talk limit that applies to a burst of `kind`, `None` if disabled.
    #[must_use]
    pub fn talk_limit_for(&self, kind: RequestKind) -> Option<Duration> {
        let limit = match kind {
            RequestKind::Normal => self.talk_limit,
            RequestKind::Broadcast => self.broadcast_talk_limit,
            RequestKind::Emergency => self.emergency_talk_limit,
        };
        enabled(limit)
    }

    /// The media-inactivity timeout, `None` if disabled.
    #[must_use]
    pub fn media_inactivity(&self) -> Option<Duration> {
        enabled(self.media_inactivity)
    }

    /// The queued-request expiry, `None` if disabled.
    #[must_use]
    pub fn queue_expiry(&self) -> Option<Duration> {
        enabled(self.queue_expiry)
    }
}

fn enabled(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}
