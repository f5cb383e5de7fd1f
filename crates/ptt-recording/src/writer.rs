//! The writer thread: takes frames and burst ends from the queues, keeps one
//! [`OpenRecording`] per burst and closes each a little after its burst
//! ended (so tail frames still land). Retention runs on its own thread;
//! the writer only counts each finished file into the shared [`Ledger`] and
//! wakes retention when the total passes the size limit.
//!
//! The thread never blocks the relay: the hot path only `try_send`s into the
//! frame queue, and the thread polls that queue instead of being woken for
//! every frame, so a sender never touches the wake-up lock. It waits on the
//! control queue (burst ends, close), which is used once per burst.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::burst::{Finished, OpenRecording, Tags};
use super::retention::Ledger;
use super::{Key, PARTIAL_DIR, relative_path, sync_dir, time};
use crate::counters::Counters;
use ptt_directory::{Directory, GroupId, TerminalId};

/// How often the frame queue is drained when nothing else happens: a frame
/// waits at most this long in the queue (one frame's time).
const POLL: Duration = Duration::from_millis(20);

/// How long after its burst ended a recording is closed, so frames that overtook the
/// burst's end still land: the relay's tail window (200 ms) plus a margin for the frame
/// queue to be drained. The relay asserts its tail window is shorter.
pub const CLOSE_AFTER: Duration = Duration::from_millis(300);

/// A recording that has had no frame and no end for this long is closed
/// and named from its first frame (its burst end never came).
const ABANDON_AFTER: Duration = Duration::from_secs(600);

/// Frames of a closed burst that still arrive within this time are ignored
/// rather than starting a new file.
const FORGET_AFTER: Duration = Duration::from_secs(10);

/// One forwarded frame for a recording.
#[derive(Debug)]
pub(super) struct Frame {
    pub key: Key,
    pub seq: u16,
    pub datagram: Bytes,
}

/// What the writer is told besides frames.
#[derive(Debug)]
pub(super) enum Control {
    /// The burst ended at the relay; `started_at_ms` names the file.
    Finish { key: Key, started_at_ms: i64 },
    /// Answered once every message sent before it is handled: every burst
    /// end before it has its audio synced.
    Barrier(Sender<()>),
    /// Close every recording now and stop; answered when done.
    Close(Sender<()>),
}

struct Slot {
    /// `None` after a disk error: frames are dropped until the burst ends.
    recording: Option<OpenRecording>,
    /// When the burst ended and the name it gets.
    finish: Option<(Instant, i64)>,
    last_frame: Instant,
}

/// Where the writer reports the bytes it finished: the ledger retention
/// keeps, and retention's wake-up when the total passes `max_bytes`.
pub(super) struct Usage {
    pub ledger: Arc<Ledger>,
    pub max_bytes: Option<u64>,
    /// `None` when retention does not run (no limits).
    pub wake: Option<SyncSender<()>>,
}

pub(super) struct Writer {
    root: PathBuf,
    frames: Receiver<Frame>,
    control: Receiver<Control>,
    capacity: usize,
    usage: Usage,
    directory: Arc<Directory>,
    metrics: Arc<Counters>,
    slots: HashMap<Key, Slot>,
    /// Burst ends that came before any frame of their burst was taken from
    /// the queue (or for bursts without frames), kept for [`CLOSE_AFTER`].
    early: HashMap<Key, (Instant, i64)>,
    forgotten: HashMap<Key, Instant>,
}

impl Writer {
    pub(super) fn new(
        root: PathBuf,
        frames: Receiver<Frame>,
        control: Receiver<Control>,
        capacity: usize,
        usage: Usage,
        directory: Arc<Directory>,
        metrics: Arc<Counters>,
    ) -> Self {
        Self {
            root,
            frames,
            control,
            capacity,
            usage,
            directory,
            metrics,
            slots: HashMap::new(),
            early: HashMap::new(),
            forgotten: HashMap::new(),
        }
    }

    pub(super) fn run(mut self) {
        let closed_by = loop {
            self.drain_frames();
            match self.control.recv_timeout(POLL) {
                Ok(Control::Finish { key, started_at_ms }) => self.finish(key, started_at_ms),
                Ok(Control::Barrier(ack)) => {
                    let _ = ack.send(());
                }
                Ok(Control::Close(ack)) => break Some(ack),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break None,
            }
            self.close_due(Instant::now());
        };
        // Shutting down: the sessions are gone, nothing more will come.
        self.drain_frames();
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Finish { key, started_at_ms } => self.finish(key, started_at_ms),
                Control::Barrier(ack) => {
                    let _ = ack.send(());
                }
                Control::Close(_) => {}
            }
        }
        let keys: Vec<Key> = self.slots.keys().copied().collect();
        for key in keys {
            self.close(key);
        }
        if let Some(ack) = closed_by {
            let _ = ack.send(());
        }
    }

    /// Takes every frame queued now (at most one queue's worth, so a
    /// producer faster than the disk cannot keep the thread here forever).
    fn drain_frames(&mut self) {
        for _ in 0..self.capacity {
            match self.frames.try_recv() {
                Ok(frame) => self.frame(frame),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
    }

    fn frame(&mut self, frame: Frame) {
        if self.forgotten.contains_key(&frame.key) {
            return;
        }
        let now = Instant::now();
        let slot = match self.slots.get_mut(&frame.key) {
            Some(slot) => slot,
            None => {
                let mut recording = self.open(frame.key);
                let finish = self.early.remove(&frame.key);
                if let (Some((_, started_at_ms)), Some(open)) = (finish, recording.as_mut())
                    && !self.set_started(open, started_at_ms)
                {
                    recording = None;
                }
                self.slots.entry(frame.key).or_insert(Slot {
                    recording,
                    finish,
                    last_frame: now,
                })
            }
        };
        slot.last_frame = now;
        let Some(recording) = slot.recording.as_mut() else {
            return;
        };
        if let Err(error) = recording.add(frame.seq, frame.datagram) {
            tracing::error!(%error, file = %recording.temp().display(), "recording failed; burst not recorded");
            self.metrics.count_errors(1);
            if let Some(failed) = slot.recording.take() {
                let _ = std::fs::remove_file(failed.temp());
            }
        }
    }

    /// Creates the temporary file of a new recording; `None` (counted) if
    /// the disk refuses.
    fn open(&self, key: Key) -> Option<OpenRecording> {
        let partial = self.root.join(PARTIAL_DIR);
        let first_ms = time::now_ms();
        let temp = partial.join(format!(
            "{first_ms}-g{}-b{}-t{}.opus.part",
            key.group, key.burst, key.talker
        ));
        let tags = Tags {
            talker: key.talker,
            talker_name: self
                .directory
                .terminal(TerminalId(key.talker))
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            group: key.group,
            group_name: self
                .directory
                .group(GroupId(key.group))
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            burst: key.burst,
            started_at_ms: first_ms,
        };
        let created = std::fs::create_dir_all(&partial)
            .and_then(|()| OpenRecording::create(temp.clone(), rand::random(), &tags));
        match created {
            Ok(recording) => Some(recording),
            Err(error) => {
                tracing::error!(%error, file = %temp.display(), "cannot create recording");
                self.metrics.count_errors(1);
                None
            }
        }
    }

    /// Notes a burst's end, writes its start into the file at once (so
    /// that crash recovery names the file as the call log does) and syncs
    /// what the burst's frames were (so a crash before the file is closed
    /// loses none of them). Frames queued before it are taken first, so a
    /// short burst's frames are not mistaken for a burst without an end.
    fn finish(&mut self, key: Key, started_at_ms: i64) {
        self.drain_frames();
        let end = (Instant::now(), started_at_ms);
        let Some(slot) = self.slots.get_mut(&key) else {
            self.early.insert(key, end);
            return;
        };
        slot.finish = Some(end);
        if let Some(open) = slot.recording.as_mut()
            && !Self::set_started_of(&self.metrics, open, started_at_ms)
        {
            slot.recording = None;
        }
        if let Some(open) = slot.recording.as_mut()
            && let Err(error) = open.flush()
        {
            tracing::error!(%error, file = %open.temp().display(), "recording failed; burst not recorded");
            self.metrics.count_errors(1);
            let _ = std::fs::remove_file(open.temp());
            slot.recording = None;
        }
    }

    fn set_started(&self, open: &mut OpenRecording, started_at_ms: i64) -> bool {
        Self::set_started_of(&self.metrics, open, started_at_ms)
    }

    /// Sets the recording's start; on a disk error (logged, counted) deletes
    /// its file and answers false: the burst is not recorded.
    fn set_started_of(metrics: &Counters, open: &mut OpenRecording, started_at_ms: i64) -> bool {
        match open.set_started(started_at_ms) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, file = %open.temp().display(), "recording failed; burst not recorded");
                metrics.count_errors(1);
                let _ = std::fs::remove_file(open.temp());
                false
            }
        }
    }

    /// Closes the recordings whose burst ended [`CLOSE_AFTER`] ago, and
    /// those abandoned; forgets closed bursts after [`FORGET_AFTER`].
    fn close_due(&mut self, now: Instant) {
        let due: Vec<Key> = self
            .slots
            .iter()
            .filter(|(_, slot)| match slot.finish {
                Some((at, _)) => now.duration_since(at) >= CLOSE_AFTER,
                None => now.duration_since(slot.last_frame) >= ABANDON_AFTER,
            })
            .map(|(key, _)| *key)
            .collect();
        for key in due {
            self.close(key);
        }
        self.forgotten
            .retain(|_, at| now.duration_since(*at) < FORGET_AFTER);
        self.early
            .retain(|_, (at, _)| now.duration_since(*at) < CLOSE_AFTER);
    }

    /// Finishes a recording: final page, synced, renamed into its day
    /// folder (named from the burst's logged start, or from its first frame
    /// if its end never came), folder synced, counted for retention. A
    /// recording without a usable frame leaves no file; one that cannot be
    /// finished is deleted.
    fn close(&mut self, key: Key) {
        let Some(slot) = self.slots.remove(&key) else {
            return;
        };
        self.forgotten.insert(key, Instant::now());
        let Some(recording) = slot.recording else {
            return;
        };
        if slot.finish.is_none() {
            tracing::warn!(file = %recording.temp().display(), "recording closed without its burst end; named from its first frame");
        }
        let temp = recording.temp().to_path_buf();
        let finished = match recording.finish() {
            Ok(Some(finished)) => finished,
            Ok(None) => {
                tracing::debug!(
                    group = key.group,
                    burst = key.burst,
                    "no usable frame; no recording"
                );
                return;
            }
            Err(error) => {
                tracing::error!(%error, group = key.group, burst = key.burst, "cannot finish recording");
                self.metrics.count_errors(1);
                let _ = std::fs::remove_file(&temp);
                return;
            }
        };
        let relative = relative_path(key.group, finished.started_at_ms, key.burst, key.talker);
        match rename_into_place(&finished, &self.root.join(&relative)) {
            Ok(()) => {
                self.metrics.count_written();
                let day = time::date(finished.started_at_ms);
                let total = self.usage.ledger.add(&day, finished.len);
                if self.usage.max_bytes.is_some_and(|max| total > max)
                    && let Some(wake) = &self.usage.wake
                {
                    // Full means a wake-up is pending already.
                    let _ = wake.try_send(());
                }
            }
            Err(error) => {
                // Kept as .part: the next start recovers it.
                tracing::error!(%error, group = key.group, burst = key.burst, file = %finished.temp.display(), "cannot name recording");
                self.metrics.count_errors(1);
            }
        }
    }
}

/// Renames a finished temporary file to `path` and syncs the day folder, so
/// that the name survives a crash as the contents do. Retention may remove
/// a day folder it emptied just as a recording is named into it: the
/// folder is then made again.
fn rename_into_place(finished: &Finished, path: &Path) -> io::Result<()> {
    let Some(day) = path.parent() else {
        return Err(io::Error::other("a recording path without a folder"));
    };
    for attempt in 0..3 {
        std::fs::create_dir_all(day)?;
        match std::fs::rename(&finished.temp, path) {
            Ok(()) => return sync_dir(day),
            Err(error) if error.kind() == io::ErrorKind::NotFound && attempt < 2 => {}
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("the day folder kept vanishing"))
}
