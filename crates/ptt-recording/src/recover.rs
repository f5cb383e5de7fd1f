//! Crash recovery: the temporary files a crash (or a kill) left in the
//! partial folder are finished at start, before any new recording opens,
//! and reconciled with the call log's rows both ways.
//!
//! The writer syncs a recording every [`SYNC_EVERY`](crate::SYNC_EVERY) of
//! audio and at its burst's end, so after a crash a temporary file is its
//! header pages, the audio pages up to the last sync and possibly a torn
//! page or zeros at the end. Every page carries a CRC, so the intact prefix
//! is known exactly: the file is cut after its last intact page, that page
//! is marked end of stream, and the file is renamed into its day folder
//! like any finished recording. The audio up to the crash is what an
//! investigation after an incident needs most, so it is kept however short:
//! one intact audio page is enough. Only a file with no audio page at all
//! (or not named as a recording) is deleted.
//!
//! Files and rows:
//! - a file whose burst has a row (same group, burst and talker, and a
//!   burst that spans the file's first frame) is named from that row, so the
//!   row points at it, and its `STARTED` tag is set to the row's start;
//! - a file whose burst has no row (the burst was in flight at the crash,
//!   or its row was still queued) keeps its file under the name its
//!   `STARTED` tag gives, and is logged and listed in
//!   [`Recovered::unlogged`]; so is one whose row names no recording (a
//!   burst of tail frames only), under the row's name;
//! - a row whose file was deleted (no audio page) is marked as audio lost
//!   in the call log; so is, after a run that did not close cleanly, a row
//!   of the last bursts before the crash whose file is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::burst_log::{BurstLog, LoggedBurst};
use super::torn::{self, Intact};
use super::{Key, PARTIAL_DIR, parse_file_name, relative_path, resolve, sync_dir, time};

/// Suffix of a temporary recording.
pub(super) const PART_SUFFIX: &str = ".opus.part";

/// How far a burst's row may be, in time, from its recording's first frame
/// and still be the row of that recording: the row spans the burst from
/// the grant to the release, the first frame reaches the writer in between,
/// or up to the tail window after a very short burst; the margin also
/// absorbs a small step of the wall clock.
const MATCH_SLACK: Duration = Duration::from_secs(2);

/// After a run that did not close cleanly, the rows of the bursts that
/// ended this long before the newest one are checked for their files: a
/// recording is renamed into place [`CLOSE_AFTER`](crate::CLOSE_AFTER)
/// after its burst ends (later only if the writer lags by its queue, a
/// couple of seconds), so a file missing for such a row was open at the
/// crash. Older rows are not checked (retention may have deleted their
/// files).
const LOST_LOOKBACK: Duration = Duration::from_secs(10);

/// What recovery did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Temporary files finished and renamed into their day folders.
    pub finished: u64,
    /// Temporary files deleted because nothing in them could be played.
    pub deleted: u64,
    /// Files that could not be read, fixed, renamed or deleted, and failed
    /// questions to the call log (logged).
    pub errors: u64,
    /// Recovered recordings no row points to (paths relative to the
    /// recordings directory): bursts whose row was never written, kept as
    /// evidence and logged.
    pub unlogged: Vec<String>,
    /// Rows marked as having lost their audio in the crash.
    pub lost: Vec<i64>,
}

/// Finishes or deletes every `*.opus.part` in `root`'s partial folder,
/// naming each from its own `STARTED` tag. Call before the writer starts:
/// every such file is then an orphan.
pub fn orphans(root: &Path) -> Recovered {
    reconcile(root, &mut super::NoBurstLog, None)
}

/// Finishes or deletes every `*.opus.part` in `root`'s partial folder and
/// reconciles them with `log` (see the module's documentation). `unclean`
/// is `Some(max_age)` (the retention age limit, if any) when the last run
/// did not close cleanly: then the rows of its last bursts are checked for
/// their files too, except those retention would have deleted by age.
pub fn reconcile(
    root: &Path,
    log: &mut dyn BurstLog,
    unclean: Option<Option<Duration>>,
) -> Recovered {
    let mut done = Recovered::default();
    if let Ok(entries) = std::fs::read_dir(root.join(PARTIAL_DIR)) {
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.ends_with(PART_SUFFIX) {
                recover_file(root, &entry.path(), &name, log, &mut done);
            }
        }
    }
    if let Some(max_age) = unclean {
        missing_since_crash(root, log, max_age, &mut done);
    }
    if !done.lost.is_empty() {
        let now_ms = time::now_ms();
        match log.mark_lost(&done.lost, now_ms) {
            Ok(()) => tracing::warn!(
                rows = ?done.lost,
                "bursts whose recording a crash lost are marked so in the call log"
            ),
            Err(error) => {
                tracing::error!(%error, rows = ?done.lost, "cannot mark recordings lost in a crash");
                done.errors += 1;
            }
        }
    }
    done
}

/// Recovers one temporary file into `done`.
fn recover_file(
    root: &Path,
    path: &Path,
    name: &str,
    log: &mut dyn BurstLog,
    done: &mut Recovered,
) {
    let Some((first_ms, key)) = parse_file_name(name, PART_SUFFIX) else {
        discard(path, "its name is not a recording's", done);
        return;
    };
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(error) => {
            tracing::error!(%error, file = %path.display(), "cannot read a recording left by a crash");
            done.errors += 1;
            return;
        }
    };
    let intact = torn::intact_pages(&data);
    let tagged = intact.as_ref().and_then(|i| i.started(&data));
    let row = row_of(log, key, first_ms, tagged, done);
    let Some(intact) = intact else {
        discard(path, "no intact audio page", done);
        if let Some(row) = row {
            done.lost.push(row.id);
        }
        return;
    };
    let (relative, started) = match &row {
        Some(row) => (
            row.recording
                .clone()
                .filter(|p| resolve(root, p).is_some())
                .unwrap_or_else(|| {
                    relative_path(key.group, row.started_at_ms, key.burst, key.talker)
                }),
            row.started_at_ms,
        ),
        None => {
            let started = tagged.unwrap_or(first_ms);
            (
                relative_path(key.group, started, key.burst, key.talker),
                started,
            )
        }
    };
    let final_path = root.join(&relative);
    if final_path.exists() {
        // Renaming would replace a finished recording of the same burst.
        discard(path, "a finished recording of the burst exists", done);
        return;
    }
    match finish(path, &data, &intact, started, &final_path) {
        Ok(()) => {
            done.finished += 1;
            match row {
                Some(row) if row.recording.is_some() => {
                    tracing::info!(from = %path.display(), to = %final_path.display(), row = row.id, "recovered a recording left by a crash");
                }
                _ => {
                    tracing::warn!(from = %path.display(), to = %final_path.display(), "recovered a recording left by a crash that no call-log row points to (its burst was in flight, its row not yet written, or its row names no recording); kept");
                    done.unlogged.push(relative);
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, file = %path.display(), "cannot recover a recording left by a crash");
            done.errors += 1;
        }
    }
}

/// The row of the burst whose recording this is: among the rows of its key
/// whose burst spans its first frame, the one whose start its `STARTED` tag
/// holds (the writer sets it at the burst's end), else the latest.
fn row_of(
    log: &mut dyn BurstLog,
    key: Key,
    first_ms: i64,
    tagged: Option<i64>,
    done: &mut Recovered,
) -> Option<LoggedBurst> {
    let slack = MATCH_SLACK.as_millis() as i64;
    match log.bursts_around(key, first_ms, slack) {
        Ok(rows) => {
            let tagged_row = rows
                .iter()
                .position(|row| Some(row.started_at_ms) == tagged);
            match tagged_row {
                Some(at) => rows.into_iter().nth(at),
                None => rows.into_iter().next(),
            }
        }
        Err(error) => {
            tracing::error!(%error, ?key, "cannot look up the call-log row of a recording left by a crash; named from its tag");
            done.errors += 1;
            None
        }
    }
}

/// Repairs a temporary file and renames it into its day folder.
fn finish(
    temp: &Path,
    data: &[u8],
    intact: &Intact,
    started_at_ms: i64,
    final_path: &Path,
) -> std::io::Result<()> {
    torn::repair(temp, data, intact, started_at_ms)?;
    let Some(day) = final_path.parent() else {
        return Err(std::io::Error::other("a recording path without a folder"));
    };
    std::fs::create_dir_all(day)?;
    std::fs::rename(temp, final_path)?;
    sync_dir(day)
}

fn discard(path: &Path, why: &str, done: &mut Recovered) {
    tracing::warn!(file = %path.display(), why, "deleting a recording left by a crash");
    match std::fs::remove_file(path) {
        Ok(()) => done.deleted += 1,
        Err(error) => {
            tracing::error!(%error, file = %path.display(), "cannot delete a recording left by a crash");
            done.errors += 1;
        }
    }
}

/// Adds to `done.lost` the rows of the bursts that ended within
/// [`LOST_LOOKBACK`] of the newest whose file is missing, unless retention
/// would have deleted it by age.
fn missing_since_crash(
    root: &Path,
    log: &mut dyn BurstLog,
    max_age: Option<Duration>,
    done: &mut Recovered,
) {
    let rows = log.newest_end().and_then(|newest| match newest {
        Some(newest) => log.recorded_since(newest - LOST_LOOKBACK.as_millis() as i64),
        None => Ok(Vec::new()),
    });
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(%error, "cannot list the bursts logged before the crash");
            done.errors += 1;
            return;
        }
    };
    let expired_before = max_age.map_or(i64::MIN, |age| {
        time::now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
    });
    for row in rows {
        let path: Option<PathBuf> = row.recording.as_deref().and_then(|p| resolve(root, p));
        let missing = path.is_some_and(|path| !path.exists());
        if missing && row.started_at_ms >= expired_before && !done.lost.contains(&row.id) {
            done.lost.push(row.id);
        }
    }
}
