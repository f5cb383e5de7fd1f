//! Recordings: every talk burst written as an Ogg Opus file (RFC 7845), off
//! the hot path.
//!
//! The fan-out hands each forwarded frame to [`Recorder::offer`]: one
//! non-blocking `try_send` of a reference-counted buffer into a bounded
//! queue; when the queue is full the frame is dropped and counted
//! (`recording_frames_dropped`), never waited for. One writer thread owns
//! the files: it opens a recording at a burst's first frame under a
//! temporary name in `.partial/`, writes the packets as they came (the relay
//! never decodes), and when the group task reports the burst's end through
//! [`Recorder::finish`] it waits the relay's tail grace (late frames still
//! land), writes the last page, syncs the file, renames it to
//! [`relative_path`] and syncs the day folder. A half-written file is
//! therefore never listed under its final name, and a listed one survives a
//! crash. While a recording is written it is synced every [`SYNC_EVERY`]
//! of audio and when its burst ends, so a crash loses at most that much of
//! a burst in flight (and the 60 ms held for reordering); what it leaves in
//! `.partial/` is finished by [`recover`] at the next start and reconciled
//! with the call log through [`BurstLog`]. A burst in which no frame was usable
//! leaves no file. Disk errors are logged and counted (`recording_errors`),
//! never fatal; so is a recording thread that dies (its queue then counts
//! every frame as dropped).
//!
//! Layout under the recordings directory:
//!
//! ```text
//! 2025-01-31/1738311300250-g10-b7-t301.opus   finished: <UTC day>/<start ms>-g<group>-b<burst>-t<talker>.opus
//! .partial/…opus.part                          being written (or left by a crash)
//! .running                                     there while a recorder runs: found at start, the last run crashed
//! ```
//!
//! Each file: identification header (mono, 16 kHz input rate, pre-skip 312),
//! comment header (vendor `pttd`; `TALKER`, `TALKER_NAME`, `GROUP`,
//! `GROUP_NAME`, `BURST`, `STARTED` in RFC 3339 UTC), then the Opus packets
//! with granule positions in 48 kHz samples counted from each packet's TOC;
//! lost frames are filled with concealment packets (RFC 7845 §4.1); the last
//! page has EOS. [`retention`], on a thread of its own, deletes what is
//! older or more than the limits allow, never a file still being written.
//!
//! This crate owns the files, their names and their lifecycle (writer, retention,
//! torn-file recovery) and counts what it does in [`Counters`]. It knows the directory's
//! names for tags, but nothing of sessions, floors or the call log: the relay tells it
//! when a burst ends, and stores the path [`relative_path`] gives in its own records.
#![forbid(unsafe_code)]

use std::panic::AssertUnwindSafe;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use ptt_directory::Directory;

mod burst;
mod burst_log;
mod counters;
pub mod ogg;
pub mod recover;
pub mod retention;
mod time;
mod torn;
mod writer;

pub use burst::SYNC_EVERY;
pub use burst_log::{BurstKey, BurstLog, BurstLogError, LoggedBurst, NoBurstLog};
pub use counters::Counters;
pub use retention::Limits;
pub use writer::CLOSE_AFTER;

use retention::{Ledger, Retention};
use writer::{Control, Frame, Usage, Writer};

/// Folder (inside the recordings directory) of the recordings being
/// written; its files are never served.
pub const PARTIAL_DIR: &str = ".partial";

/// File in the recordings directory that a running recorder keeps and
/// removes when it closes: found at start, the last run ended without
/// closing (a crash, a kill), and recovery checks the last rows for their
/// files. Never served (its name starts with a dot) nor touched by retention.
const RUNNING_MARKER: &str = ".running";

/// Longest [`Recorder::wait_for_burst_ends`] waits: the writer syncs a
/// burst's end within a millisecond or two unless the disk stalls or its
/// queue is long, and what waits (the call log's commit) must not stall
/// with it.
pub const BURST_END_WAIT: Duration = Duration::from_millis(200);

/// Where a burst's recording is, relative to the recordings directory:
/// `<UTC day of start>/<start unix ms>-g<group>-b<burst>-t<talker>.opus`.
/// Deterministic from what the call log stores, so the history API finds a
/// burst's file from its row; made of digits only, so never a path escape.
pub fn relative_path(group: u32, started_at_ms: i64, burst: u32, talker: u32) -> String {
    format!(
        "{}/{started_at_ms}-g{group}-b{burst}-t{talker}.opus",
        time::date(started_at_ms)
    )
}

/// Which burst a recording file is, read from its file name (a finished
/// `….opus` or a half-written `….opus.part`): (start unix ms, group, burst,
/// talker). For tools and tests that find a burst's file without
/// re-implementing the naming of [`relative_path`].
pub fn burst_of_file(file_name: &str) -> Option<(i64, u32, u32, u32)> {
    parse_file_name(file_name, recover::PART_SUFFIX)
        .or_else(|| parse_file_name(file_name, ".opus"))
        .map(|(ms, key)| (ms, key.group, key.burst, key.talker))
}

/// The start (unix ms) and key in a recording's file name
/// `<ms>-g<group>-b<burst>-t<talker><suffix>`; `None` for any other name.
fn parse_file_name(name: &str, suffix: &str) -> Option<(i64, Key)> {
    let stem = name.strip_suffix(suffix)?;
    let (ms, rest) = stem.split_once("-g")?;
    let (group, rest) = rest.split_once("-b")?;
    let (burst, talker) = rest.split_once("-t")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if ![ms, group, burst, talker].into_iter().all(digits) {
        return None;
    }
    let key = Key {
        group: group.parse().ok()?,
        burst: burst.parse().ok()?,
        talker: talker.parse().ok()?,
    };
    Some((ms.parse().ok()?, key))
}

/// Syncs a directory, so that a rename into it survives a crash.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Runs a recording thread's body; a panic is logged and counted in
/// `recording_errors` instead of vanishing with the thread, so operators
/// see that recording stopped.
fn supervised(name: &str, metrics: &Counters, body: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(body)) {
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        tracing::error!(
            thread = name,
            panic = message,
            "a recording thread panicked: bursts are no longer recorded until the relay restarts"
        );
        metrics.count_errors(1);
    }
}

/// The file a stored relative path names under `root`, or `None` if the
/// path could leave `root` (absolute, `..`) or is not a finished recording.
/// For serving paths read back from the database.
pub fn resolve(root: &Path, relative: &str) -> Option<PathBuf> {
    let path = Path::new(relative);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::Normal(part) if !part.to_string_lossy().starts_with('.')));
    (plain && relative.ends_with(".opus")).then(|| root.join(path))
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The recordings directory cannot be created: check the path and its
    /// permissions, or turn recording off.
    #[error("recordings directory {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the recording thread: {0}")]
    Thread(std::io::Error),
}

/// What the recorder needs from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The recordings directory.
    pub dir: PathBuf,
    /// Frames the queue holds before dropping.
    pub queue: usize,
    /// Retention limits.
    pub limits: Limits,
}

/// Identifies one burst's recording: a burst id is unique within its group
/// (for one run), and an all-call gives each group its own burst.
type Key = BurstKey;

/// Handle to the recorder; cheap to clone (one `Arc`), usable from any
/// thread. A disabled recorder does nothing and costs one branch.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    frames: SyncSender<Frame>,
    control: Sender<Control>,
    dir: PathBuf,
    metrics: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
    retention: Mutex<Option<JoinHandle<()>>>,
    /// Tells retention to stop early at close.
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// A recorder that records nothing (`record = false`).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Creates the recordings directory, finishes the recordings a crash
    /// left (see [`recover::orphans`]: named from their own tags) and starts
    /// the writer thread and, if there are limits, the retention thread.
    /// `directory` names talkers and groups in the tags; `metrics` gets the
    /// recording counters.
    pub fn start(
        settings: Settings,
        directory: Arc<Directory>,
        metrics: Arc<Counters>,
    ) -> Result<Self, RecordingError> {
        Self::start_with_log(settings, directory, metrics, &mut NoBurstLog)
    }

    /// [`Recorder::start`], reconciling the recordings a crash left with
    /// the call log `log` (see [`recover::reconcile`]): recovered files are
    /// named as their rows name them, rows whose audio the crash lost are
    /// marked so.
    pub fn start_with_log(
        settings: Settings,
        directory: Arc<Directory>,
        metrics: Arc<Counters>,
        log: &mut dyn BurstLog,
    ) -> Result<Self, RecordingError> {
        let dir_error = |source| RecordingError::Dir {
            path: settings.dir.clone(),
            source,
        };
        let partial = settings.dir.join(PARTIAL_DIR);
        std::fs::create_dir_all(&partial).map_err(dir_error)?;
        // Before any thread: every temporary file now is an orphan, and the
        // recovered ones are on disk before retention counts what is there.
        let marker = settings.dir.join(RUNNING_MARKER);
        let unclean = marker.exists().then_some(settings.limits.max_age);
        let recovered = recover::reconcile(&settings.dir, log, unclean);
        metrics.count_errors(recovered.errors);
        if recovered != recover::Recovered::default() {
            tracing::info!(
                finished = recovered.finished,
                deleted = recovered.deleted,
                unlogged = recovered.unlogged.len(),
                lost = recovered.lost.len(),
                errors = recovered.errors,
                "recordings left by the last run recovered"
            );
        }
        std::fs::write(&marker, time::now_ms().to_string())
            .and_then(|()| sync_dir(&settings.dir))
            .map_err(dir_error)?;
        // Bursts start after this: the writer counts their files, the
        // retention scan those from before.
        let counted_before_ms = time::now_ms();
        let capacity = settings.queue.max(1);
        let (frames, frames_rx) = mpsc::sync_channel(capacity);
        // Unbounded, but one message per burst (rate-limited by the floor):
        // a burst end is never dropped, and sending never blocks a group task.
        let (control, control_rx) = mpsc::channel();
        let ledger = Arc::new(Ledger::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, wake_rx) = mpsc::sync_channel(1);
        let retention = settings.limits.any().then(|| Retention {
            root: settings.dir.clone(),
            limits: settings.limits,
            ledger: ledger.clone(),
            counted_before_ms,
            wake: wake_rx,
            stop: stop.clone(),
            metrics: metrics.clone(),
        });
        let usage = Usage {
            ledger,
            max_bytes: settings.limits.max_bytes,
            wake: retention.is_some().then_some(wake),
        };
        let writer = Writer::new(
            settings.dir.clone(),
            frames_rx,
            control_rx,
            capacity,
            usage,
            directory,
            metrics.clone(),
        );
        let writer_metrics = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("pttd-recorder".to_owned())
            .spawn(move || supervised("pttd-recorder", &writer_metrics, || writer.run()))
            .map_err(RecordingError::Thread)?;
        let retention = match retention {
            Some(retention) => {
                let retention_metrics = metrics.clone();
                let handle = std::thread::Builder::new()
                    .name("pttd-retention".to_owned())
                    .spawn(move || {
                        supervised("pttd-retention", &retention_metrics, || retention.run())
                    });
                match handle {
                    Ok(handle) => Some(handle),
                    Err(error) => {
                        // The writer ends once `control` is dropped.
                        return Err(RecordingError::Thread(error));
                    }
                }
            }
            None => None,
        };
        Ok(Self {
            inner: Some(Arc::new(Inner {
                frames,
                control,
                dir: settings.dir,
                metrics,
                thread: Mutex::new(Some(thread)),
                retention: Mutex::new(retention),
                stop,
            })),
        })
    }

    /// The recordings directory, `None` when recording is off.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.as_ref().map(|inner| inner.dir.as_path())
    }

    /// Hands one forwarded frame (the stamped datagram, header included) of
    /// `talker`'s burst `burst` in `group` to the writer. Never blocks: a
    /// full queue drops the frame and counts it. Returns whether it was
    /// queued.
    #[inline]
    pub fn offer(&self, group: u32, burst: u32, talker: u32, seq: u16, frame: &Bytes) -> bool {
        let Some(inner) = &self.inner else {
            return false;
        };
        let frame = Frame {
            key: Key {
                group,
                burst,
                talker,
            },
            seq,
            datagram: frame.clone(),
        };
        match inner.frames.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                inner.metrics.count_frame_dropped();
                false
            }
        }
    }

    /// Tells the writer that the burst ended: its recording is closed after
    /// the tail grace and named from `started_at_ms` (the call log's start).
    /// Returns the relative path the recording gets if `frames` were
    /// forwarded and recording is on — what the call log stores; the file
    /// may still be missing if the disk failed, every frame was dropped or
    /// none was playable (the history API then answers 404).
    pub fn finish(
        &self,
        group: u32,
        burst: u32,
        talker: u32,
        started_at_ms: i64,
        frames: u64,
    ) -> Option<String> {
        let inner = self.inner.as_ref()?;
        let key = Key {
            group,
            burst,
            talker,
        };
        // Only fails once the writer has stopped (shutdown): nothing to do.
        let _ = inner.control.send(Control::Finish { key, started_at_ms });
        (frames > 0).then(|| relative_path(group, started_at_ms, burst, talker))
    }

    /// Blocks until the writer has handled every burst end
    /// ([`Recorder::finish`]) told before this call, so their audio is
    /// synced, or [`BURST_END_WAIT`] passed; returns whether it was handled.
    /// The call log waits so before it commits burst rows: a release it
    /// acknowledges then has its audio on disk too. Returns at once when
    /// recording is off or the writer has stopped. Blocking: call from a
    /// thread of its own (the call log's writer), never from async code.
    pub fn wait_for_burst_ends(&self) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let (ack, done) = mpsc::channel();
        if inner.control.send(Control::Barrier(ack)).is_err() {
            return true;
        }
        done.recv_timeout(BURST_END_WAIT).is_ok()
    }

    /// Closes every open recording and stops the writer and retention
    /// threads (a retention pass in progress ends early). Blocking; call
    /// from `spawn_blocking` in async code. Later offers are dropped and
    /// counted.
    pub fn close(&self) {
        let Some(inner) = &self.inner else { return };
        inner.stop.store(true, Ordering::Relaxed);
        let (ack, done) = mpsc::channel();
        if inner.control.send(Control::Close(ack)).is_ok() {
            let _ = done.recv();
        }
        for thread in [&inner.thread, &inner.retention] {
            let handle = thread.lock().ok().and_then(|mut h| h.take());
            if let Some(handle) = handle {
                let _ = handle.join();
            }
        }
        // Every recording is finished: the next start has nothing to recover.
        let _ = std::fs::remove_file(inner.dir.join(RUNNING_MARKER));
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_reconcile;
#[cfg(test)]
mod tests_recover;
#[cfg(test)]
mod tests_retention;
#[cfg(test)]
mod tests_sync;
