//! One talkgroup: the state the voice hot path reads without locks, and the
//! task that owns the group's floor.
//!
//! The hot path needs two facts per datagram: who may talk now (the floor
//! gate, one atomic word) and who listens (a copy-on-write list of links).
//! Everything else — the floor state machine, its timers, membership — is
//! owned by a single task per group and changed only there, so it needs no
//! lock at all. Sessions talk to that task through a bounded command queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use ptt_floor::{MemberRights, Priority, RequestKind};
use ptt_proto::pb;
use tokio::sync::mpsc;

use crate::link::Link;

pub mod context;
mod events;
pub mod registry;
mod task;

pub use context::{EmergencyWatch, GroupContext};
pub use registry::Groups;
pub use task::GroupTask;

/// How long after a burst ends its late frames are still forwarded (while
/// nobody else holds the floor).
pub const TAIL_GRACE_MS: u64 = 200;

// The recorder keeps a burst's file open past its end for the frames of the tail window.
const _: () = assert!((TAIL_GRACE_MS as u128) < ptt_recording::CLOSE_AFTER.as_millis());

/// Commands a group task accepts; queued per group, bounded.
pub const COMMAND_QUEUE: usize = 1024;

/// What a session asks of a group's task.
#[derive(Debug)]
pub enum Command {
    /// Start hearing the group (answered with `JoinOk`).
    Join {
        /// The terminal's link.
        link: Arc<Link>,
        /// Its floor rights in this group.
        rights: MemberRights,
        /// The group as this terminal sees it, for the answer.
        info: pb::GroupInfo,
        /// The request to answer; 0 for an automatic join at log-in.
        request_id: u64,
    },
    /// Stop hearing the group; withdraws requests and frees a held floor.
    Leave {
        /// The terminal.
        terminal: u32,
        /// Its session: a leave from a replaced session is ignored.
        session: u64,
        /// Why: the connection was lost (true) or the terminal asked (false).
        disconnected: bool,
        /// The request to answer; 0 for none.
        request_id: u64,
    },
    /// Ask for the floor.
    Request {
        /// What the request is answered with.
        answer: Answer,
        /// The requesting session; the answer goes to it, and a session that
        /// is not the group's current member for its terminal is refused.
        from: Arc<Link>,
        /// Requested priority.
        priority: Priority,
        /// Normal, broadcast or emergency.
        kind: RequestKind,
        /// The request to answer (with granted, queued or denied).
        request_id: u64,
    },
    /// Give the floor back or withdraw a queued request.
    Release {
        /// The requesting session.
        from: Arc<Link>,
        /// The burst being ended (from `FloorGranted`), or 0 for whatever the
        /// terminal holds or has queued.
        burst: u32,
        /// The request to answer with `Ack` once the burst is logged.
        request_id: u64,
    },
    /// A dispatcher clears the group's emergency.
    ClearEmergency {
        /// The dispatcher's session.
        from: Arc<Link>,
        /// The request to answer with `EmergencyState` or `Error`.
        request_id: u64,
    },
    /// The admin API clears the group's emergency as a dispatcher would, with
    /// no session: members see `EmergencyState{active: false, cleared_by: 0}`
    /// and the call log names [`ptt_calllog::ADMIN_TERMINAL`].
    AdminClearEmergency {
        /// Answered with whether an emergency was active (and is now cleared).
        reply: tokio::sync::oneshot::Sender<bool>,
    },
}

/// What answers a floor-changing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `FloorGranted`, `FloorQueued` or `FloorDenied` (a `FloorRequest`).
    Floor,
    /// `EmergencyState`, or `FloorDenied` if refused (`EmergencyDeclare`,
    /// `EmergencyClear`).
    Emergency,
}

/// The part of a group every task may read: identity, listeners and the floor
/// gate of the hot path, and the door to the group's task.
#[derive(Debug)]
pub struct GroupShared {
    /// Group id.
    pub id: u32,
    /// Display name.
    pub name: Arc<str>,
    /// Links of the joined members, replaced whole on every change so the
    /// fan-out iterates a snapshot without locking.
    pub(crate) listeners: ArcSwap<Vec<Arc<Link>>>,
    /// `holder << 32 | burst` while somebody holds the floor, 0 when idle.
    pub(crate) gate: AtomicU64,
    /// `holder << 32 | burst` of the burst that ended last, and when
    /// (relay-clock ms): its tail frames are still forwarded briefly.
    pub(crate) ended: AtomicU64,
    pub(crate) ended_at_ms: AtomicU64,
    /// Relay-clock milliseconds of the holder's latest frame, for the floor's
    /// media-inactivity timer.
    pub(crate) last_media_ms: AtomicU64,
    /// Frames forwarded in the current burst, for the call log.
    pub(crate) frames: AtomicU64,
    /// Requests waiting in the floor's queue, published by the group task
    /// after every change so the dashboard reads it without asking the task.
    pub(crate) queue_len: AtomicU32,
    /// `1 << 32 | declarer` while the group is in emergency, 0 otherwise;
    /// published by the group task like `queue_len`.
    pub(crate) emergency: AtomicU64,
    commands: mpsc::Sender<Command>,
}

impl GroupShared {
    /// Creates the shared half and the receiver the group task consumes.
    pub fn new(id: u32, name: Arc<str>) -> (Arc<Self>, mpsc::Receiver<Command>) {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        let shared = Arc::new(Self {
            id,
            name,
            listeners: ArcSwap::from_pointee(Vec::new()),
            gate: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            ended_at_ms: AtomicU64::new(0),
            last_media_ms: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            queue_len: AtomicU32::new(0),
            emergency: AtomicU64::new(0),
            commands,
        });
        (shared, rx)
    }

    /// The burst `terminal` may send now, or `None` if it does not hold the
    /// floor. One atomic load: the hot path's floor check.
    #[inline]
    pub fn burst_of(&self, terminal: u32) -> Option<u32> {
        let gate = self.gate.load(Ordering::Acquire);
        (gate != 0 && (gate >> 32) as u32 == terminal).then_some(gate as u32)
    }

    /// Whether a frame of `terminal`'s burst `burst` that just ended may still
    /// be forwarded: the floor is idle and the burst ended at most
    /// [`TAIL_GRACE_MS`] ago. Voice and control travel separately, so a
    /// release can overtake the last frames sent just before it; they are
    /// the end of a sentence and must not be cut.
    #[inline]
    pub fn accepts_tail(&self, terminal: u32, burst: u32, now_ms: u64) -> bool {
        self.gate.load(Ordering::Acquire) == 0
            && self.ended.load(Ordering::Acquire) == u64::from(terminal) << 32 | u64::from(burst)
            && now_ms <= self.ended_at_ms.load(Ordering::Acquire) + TAIL_GRACE_MS
    }

    /// The holder and its burst, or `None` while the floor is idle (for
    /// readers such as the dashboard; the hot path uses [`Self::burst_of`]).
    pub fn holder(&self) -> Option<(u32, u32)> {
        let gate = self.gate.load(Ordering::Acquire);
        (gate != 0).then_some(((gate >> 32) as u32, gate as u32))
    }

    /// Requests waiting for the floor, as the group task last published.
    pub fn queue_len(&self) -> u32 {
        self.queue_len.load(Ordering::Relaxed)
    }

    /// Who declared the group's emergency, or `None` if there is none.
    pub fn emergency_declarer(&self) -> Option<u32> {
        let state = self.emergency.load(Ordering::Acquire);
        (state != 0).then_some(state as u32)
    }

    /// Records that the holder's frame was forwarded at `now_ms` (relay clock).
    #[inline]
    pub fn note_media(&self, now_ms: u64) {
        self.last_media_ms.store(now_ms, Ordering::Relaxed);
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// The current listeners, a snapshot that stays valid while held.
    #[inline]
    pub fn listeners(&self) -> arc_swap::Guard<Arc<Vec<Arc<Link>>>> {
        self.listeners.load()
    }

    /// Queues a command for the group's task; waits only if the queue is full
    /// (which slows down the requesting session alone).
    pub async fn command(&self, command: Command) {
        // The task ends only at shutdown, when nobody needs an answer.
        let _ = self.commands.send(command).await;
    }

    /// Sends a framed message to every listener.
    pub fn broadcast(&self, frame: &bytes::Bytes) {
        for link in self.listeners.load().iter() {
            link.send_frame(frame.clone());
        }
    }
}
