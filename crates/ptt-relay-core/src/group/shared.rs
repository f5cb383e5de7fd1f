//! The part of a group the voice hot path reads without locks: the floor gate,
//! the listeners, the tail window, and the queue into the group's task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use ptt_proto::voice::seq_cmp;
use tokio::sync::mpsc;

use super::command::Command;
use crate::link::Link;
use crate::metrics::traffic::{GroupTraffic, GroupTrafficFigures};

/// How long after a burst ends its late frames are still forwarded (while
/// nobody else holds the floor).
pub const TAIL_GRACE_MS: u64 = 200;

// The recorder keeps a burst's file open past its end for the frames of the tail window.
const _: () = assert!((TAIL_GRACE_MS as u128) < ptt_recording::CLOSE_AFTER.as_millis());

/// No last sequence number known for the tail window.
const NO_SEQUENCE: u32 = u32::MAX;

/// Commands a group task accepts; queued per group, bounded.
pub const COMMAND_QUEUE: usize = 1024;

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
    /// The last sequence number of that burst its talker said it sent, or
    /// [`NO_SEQUENCE`]: tail frames after it are not forwarded.
    ended_through: AtomicU32,
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
    /// Whether this relay decides the group's floor: always alone; in a
    /// cluster, while it owns the group's lease. Only that relay records
    /// the group's bursts.
    decides_here: AtomicBool,
    /// Whether the group is this relay's alone even in a cluster (a private
    /// call's slot: each relay has its own pool under the same ids), so its
    /// voice never goes to the other relays.
    local_only: AtomicBool,
    /// This relay's live subscriptions to the group's voice from the other
    /// relays (announced to them, so that their talkers' frames are
    /// published); a count, as a subscription being dropped may overlap the
    /// next one.
    hearing: AtomicU32,
    /// The relay's own count of the group's voice (frames fanned out,
    /// datagrams handed and refused), kept here so the fan-out counts
    /// without a lookup.
    traffic: GroupTraffic,
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
            ended_through: AtomicU32::new(NO_SEQUENCE),
            last_media_ms: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            queue_len: AtomicU32::new(0),
            emergency: AtomicU64::new(0),
            decides_here: AtomicBool::new(true),
            local_only: AtomicBool::new(false),
            hearing: AtomicU32::new(0),
            traffic: GroupTraffic::default(),
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

    /// Whether frame `sequence` of `terminal`'s burst `burst` that just ended
    /// may still be forwarded: the floor is idle, the burst ended at most
    /// [`TAIL_GRACE_MS`] ago, and the frame is not after the last one the
    /// release said was sent. Voice and control travel separately, so a
    /// release can overtake the last frames sent just before it; they are
    /// the end of a sentence and must not be cut. Nothing sent after the
    /// release is.
    #[inline]
    pub fn accepts_tail(&self, terminal: u32, burst: u32, sequence: u16, now_ms: u64) -> bool {
        self.gate.load(Ordering::Acquire) == 0
            && self.ended.load(Ordering::Acquire) == u64::from(terminal) << 32 | u64::from(burst)
            && now_ms <= self.ended_at_ms.load(Ordering::Acquire) + TAIL_GRACE_MS
            && match self.ended_through.load(Ordering::Acquire) {
                NO_SEQUENCE => true,
                through => seq_cmp(sequence, through as u16) <= 0,
            }
    }

    /// Sets the last frame the tail window of the burst ending now takes
    /// (`None`: any, within the window). Stored before the ended burst is.
    pub(crate) fn set_tail_end(&self, through: Option<u16>) {
        let through = through.map_or(NO_SEQUENCE, u32::from);
        self.ended_through.store(through, Ordering::Release);
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

    /// Counts one frame fanned out to the group: `handed` datagrams went to
    /// listeners' connections, `refused` were refused by theirs.
    #[inline]
    pub fn count_frame(&self, handed: u64, refused: u64) {
        self.traffic.count_frame(handed, refused);
    }

    /// Counts the datagrams another shard handed (or saw refused) for a
    /// frame its talker's shard counted with [`GroupShared::count_frame`].
    #[inline]
    pub fn count_handed(&self, handed: u64, refused: u64) {
        self.traffic.count_handed(handed, refused);
    }

    /// The relay's own count of the group's voice since start.
    pub fn traffic(&self) -> GroupTrafficFigures {
        self.traffic.snapshot()
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

    /// Whether this relay decides the group's floor (and records it).
    #[inline]
    pub fn decides_here(&self) -> bool {
        self.decides_here.load(Ordering::Relaxed)
    }

    /// Says whether this relay decides the group's floor now.
    pub(crate) fn set_decides_here(&self, decides: bool) {
        self.decides_here.store(decides, Ordering::Relaxed);
    }

    /// Whether the group's voice stays on this relay even in a cluster.
    #[inline]
    pub fn local_only(&self) -> bool {
        self.local_only.load(Ordering::Relaxed)
    }

    /// Keeps the group's voice on this relay (set once, before it serves).
    pub(crate) fn set_local_only(&self) {
        self.local_only.store(true, Ordering::Relaxed);
    }

    /// Whether this relay takes the group's voice from the other relays now.
    pub fn hears_cluster(&self) -> bool {
        self.hearing.load(Ordering::Relaxed) > 0
    }

    /// Counts a subscription to the group's voice from the other relays, for
    /// as long as the returned guard lives (it is dropped with the task
    /// holding the subscription, however that task ends).
    pub(crate) fn hearing(self: &Arc<Self>) -> Hearing {
        self.hearing.fetch_add(1, Ordering::Relaxed);
        Hearing(self.clone())
    }

    /// Another door to the group's task, for the tasks the group task
    /// starts itself (what another relay says about the group).
    pub(crate) fn commands(&self) -> mpsc::Sender<Command> {
        self.commands.clone()
    }

    /// Sends a framed message to every listener.
    pub fn broadcast(&self, frame: &bytes::Bytes) {
        for link in self.listeners.load().iter() {
            link.send_frame(frame.clone());
        }
    }
}

/// One live subscription to a group's voice from the other relays (see
/// [`GroupShared::hearing`]).
#[derive(Debug)]
pub(crate) struct Hearing(Arc<GroupShared>);

impl Drop for Hearing {
    fn drop(&mut self) {
        self.0.hearing.fetch_sub(1, Ordering::Relaxed);
    }
}
