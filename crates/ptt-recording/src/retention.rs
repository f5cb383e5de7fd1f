//! Retention, on a thread of its own so that deleting never holds up the
//! writer (whose frame queue holds a couple of seconds of audio).
//!
//! Nothing is stat'ed per pass. Recordings live in UTC day folders named by
//! the burst's start and the file names start with the start's unix ms, so
//! age is read from names: a day folder whose whole day is older than the
//! age limit is emptied without looking at its files' metadata, and only
//! the day the limit falls in is listed to delete its older files by name.
//! Size is a running total, the [`Ledger`]: one full scan at start counts
//! what is on disk, the writer adds each recording it finishes, retention
//! subtracts what it deletes. While the total is over the size limit the
//! oldest recordings go, oldest day first and in name order within it
//! (one stat per deleted file, for its size).
//!
//! Retention touches only finished recordings (`<day>/<ms>-g…-b…-t….opus`);
//! the recordings being written are in the partial folder, which it never
//! enters (orphans there are the start's crash recovery's business).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{parse_file_name, time};
use crate::counters::Counters;

/// Suffix of a finished recording.
const SUFFIX: &str = ".opus";

/// How often retention runs while the relay is up (besides when the writer
/// reports the size limit exceeded).
pub const EVERY: Duration = Duration::from_secs(600);

/// How much to keep. `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Delete recordings whose burst started longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest recordings while all of them take more bytes.
    pub max_bytes: Option<u64>,
}

impl Limits {
    /// Whether there is any limit to enforce.
    pub fn any(&self) -> bool {
        self.max_age.is_some() || self.max_bytes.is_some()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    /// Files deleted.
    pub deleted: u64,
    /// Bytes they held.
    pub deleted_bytes: u64,
    /// Bytes of finished recordings left, by the ledger (which counts what
    /// was on disk at start only when there is a size limit).
    pub kept_bytes: u64,
    /// Files or folders that could not be read or deleted (logged).
    pub errors: u64,
}

/// Bytes of finished recordings per day folder: the running total that
/// spares retention a scan of every file. Shared by the writer (adds) and
/// retention (subtracts); the lock is taken once per finished recording
/// and per deleted file, never held across I/O.
#[derive(Debug, Default)]
pub struct Ledger {
    days: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    fn days(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.days.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `bytes` more in `day`; returns the new total.
    pub fn add(&self, day: &str, bytes: u64) -> u64 {
        let mut days = self.days();
        *days.entry(day.to_owned()).or_default() += bytes;
        days.values().sum()
    }

    /// Counts `bytes` fewer in `day` (a day at zero is forgotten).
    pub fn sub(&self, day: &str, bytes: u64) {
        let mut days = self.days();
        if let Some(held) = days.get_mut(day) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                days.remove(day);
            }
        }
    }

    /// Bytes counted in `day`.
    pub fn day(&self, day: &str) -> u64 {
        self.days().get(day).copied().unwrap_or(0)
    }

    /// Bytes counted in all.
    pub fn total(&self) -> u64 {
        self.days().values().sum()
    }

    /// The days counted, oldest first.
    fn counted_days(&self) -> Vec<String> {
        self.days().keys().cloned().collect()
    }
}

/// One finished recording found in a day folder.
struct Found {
    start_ms: i64,
    path: PathBuf,
}

/// The day folders under `root` (names `YYYY-MM-DD`), oldest first.
fn day_folders(root: &Path, swept: &mut Swept) -> Vec<String> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::warn!(%error, dir = %root.display(), "recording retention: cannot list");
            swept.errors += 1;
            return Vec::new();
        }
    };
    let mut days: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| time::is_date(name))
        .collect();
    days.sort();
    days
}

/// The finished recordings of one day folder by name, oldest first. No stat.
fn recordings_in(folder: &Path, swept: &mut Swept) -> Vec<Found> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::warn!(%error, dir = %folder.display(), "recording retention: cannot list");
            swept.errors += 1;
            return Vec::new();
        }
    };
    let mut found: Vec<Found> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (start_ms, _) = parse_file_name(&name, SUFFIX)?;
            Some(Found {
                start_ms,
                path: e.path(),
            })
        })
        .collect();
    found.sort_by(|a, b| {
        a.start_ms
            .cmp(&b.start_ms)
            .then_with(|| a.path.cmp(&b.path))
    });
    found
}

/// Counts the finished recordings on disk whose burst started before
/// `before_ms` into `ledger`: the one full scan, at start. Later recordings
/// are the writer's to count (their bursts start after the recorder did).
/// Returns the files that could not be read.
pub fn scan(root: &Path, before_ms: i64, ledger: &Ledger, stop: &AtomicBool) -> u64 {
    let mut swept = Swept::default();
    for day in day_folders(root, &mut swept) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let bytes = scan_day(&root.join(&day), before_ms, &mut swept);
        if bytes > 0 {
            ledger.add(&day, bytes);
        }
    }
    swept.errors
}

/// Bytes of the recordings in one day folder started before `before_ms`.
fn scan_day(folder: &Path, before_ms: i64, swept: &mut Swept) -> u64 {
    let mut bytes = 0;
    for found in recordings_in(folder, swept) {
        if found.start_ms >= before_ms {
            continue;
        }
        match std::fs::symlink_metadata(&found.path) {
            Ok(meta) => bytes += meta.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(_) => swept.errors += 1,
        }
    }
    bytes
}

/// Applies `limits` to the finished recordings under `root` at wall-clock
/// `now_ms`, keeping `ledger` up to date; stops early once `stop` is set.
pub fn enforce(
    root: &Path,
    limits: Limits,
    ledger: &Ledger,
    now_ms: i64,
    stop: &AtomicBool,
) -> Swept {
    let mut swept = Swept::default();
    if let Some(age) = limits.max_age {
        let cutoff_ms = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let cutoff_day = time::date(cutoff_ms);
        for day in day_folders(root, &mut swept) {
            if day > cutoff_day || stop.load(Ordering::Relaxed) {
                break;
            }
            let whole_day = day < cutoff_day;
            let counted = ledger.day(&day);
            let before = swept;
            delete_oldest(root, &day, ledger, &mut swept, stop, |found| {
                // A whole expired day goes by name alone; in the day the
                // limit falls in, only the files started before it.
                (whole_day || found.start_ms < cutoff_ms).then_some(!whole_day)
            });
            if whole_day {
                // Sizes were not read: the day's count goes with it, or, if
                // something could not be deleted, what is left is counted.
                ledger.sub(&day, counted);
                if swept.errors == before.errors {
                    swept.deleted_bytes += counted;
                } else {
                    let left = scan_day(&root.join(&day), i64::MAX, &mut swept);
                    ledger.add(&day, left);
                }
            }
        }
    }
    if let Some(max) = limits.max_bytes {
        for day in ledger.counted_days() {
            if ledger.total() <= max || stop.load(Ordering::Relaxed) {
                break;
            }
            delete_oldest(root, &day, ledger, &mut swept, stop, |_| {
                (ledger.total() > max).then_some(true)
            });
        }
    }
    swept.kept_bytes = ledger.total();
    swept
}

/// Deletes the recordings of `day`, oldest first, while `take` says
/// `Some(weigh)` (`weigh`: stat the file first and subtract its size from
/// the ledger); stops at the first `None`. Removes the folder if that left
/// it empty.
fn delete_oldest(
    root: &Path,
    day: &str,
    ledger: &Ledger,
    swept: &mut Swept,
    stop: &AtomicBool,
    mut take: impl FnMut(&Found) -> Option<bool>,
) {
    let folder = root.join(day);
    for found in recordings_in(&folder, swept) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Some(weigh) = take(&found) else { break };
        let len = if weigh {
            match std::fs::symlink_metadata(&found.path) {
                Ok(meta) => meta.len(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => {
                    tracing::warn!(%error, file = %found.path.display(), "recording retention: cannot read");
                    swept.errors += 1;
                    continue;
                }
            }
        } else {
            0
        };
        match std::fs::remove_file(&found.path) {
            Ok(()) => {
                swept.deleted += 1;
                swept.deleted_bytes += len;
                ledger.sub(day, len);
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => ledger.sub(day, len),
            Err(error) => {
                tracing::warn!(%error, file = %found.path.display(), "recording retention: cannot delete");
                swept.errors += 1;
            }
        }
    }
    // Fails (harmlessly) unless the folder is empty now; the writer
    // recreates a day folder it finds gone.
    let _ = std::fs::remove_dir(&folder);
}

/// The retention thread's state.
pub(super) struct Retention {
    /// The recordings directory.
    pub root: PathBuf,
    /// What to enforce.
    pub limits: Limits,
    /// The running total, shared with the writer.
    pub ledger: Arc<Ledger>,
    /// Recordings started before this unix ms are counted by the start's
    /// scan, later ones by the writer.
    pub counted_before_ms: i64,
    /// A message (or a full channel) from the writer: the total passed the
    /// size limit. Disconnected: the writer stopped.
    pub wake: Receiver<()>,
    /// Set when the recorder closes, so a long pass ends early.
    pub stop: Arc<AtomicBool>,
    /// Gets `recording_errors`.
    pub metrics: Arc<Counters>,
}

impl Retention {
    /// Counts what is on disk (if there is a size limit), then enforces the
    /// limits at once, every [`EVERY`] and whenever the writer wakes it.
    /// Ends when the writer is gone or the recorder closes.
    pub(super) fn run(self) {
        let ledger = &self.ledger;
        if self.limits.max_bytes.is_some() {
            let errors = scan(&self.root, self.counted_before_ms, ledger, &self.stop);
            self.metrics.count_errors(errors);
            tracing::debug!(bytes = ledger.total(), "recordings counted for retention");
        }
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let now_ms = super::time::now_ms();
            let swept = enforce(&self.root, self.limits, ledger, now_ms, &self.stop);
            self.metrics.count_errors(swept.errors);
            if swept.deleted > 0 {
                tracing::info!(
                    files = swept.deleted,
                    bytes = swept.deleted_bytes,
                    kept_bytes = swept.kept_bytes,
                    "recording retention deleted old recordings"
                );
            }
            match self.wake.recv_timeout(EVERY) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
