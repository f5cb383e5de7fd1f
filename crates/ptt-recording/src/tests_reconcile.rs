//! Crash recovery reconciled with the record of bursts: files named as their
//! rows name them, short files kept, rows whose audio is gone marked.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::burst::OpenRecording;
use super::tests::{comments, datagram, directory, pages, settings, tags};
use super::*;

/// The record of bursts in memory.
#[derive(Debug, Default)]
struct Rows {
    rows: Vec<LoggedBurst>,
    lost: Vec<i64>,
}

impl Rows {
    fn add(&mut self, id: i64, burst: u32, started: i64, ended: i64, recording: bool) {
        let key = BurstKey {
            group: 10,
            burst,
            talker: 301,
        };
        self.rows.push(LoggedBurst {
            id,
            key,
            started_at_ms: started,
            ended_at_ms: ended,
            recording: recording.then(|| relative_path(10, started, burst, 301)),
        });
    }
}

impl BurstLog for Rows {
    fn bursts_around(
        &mut self,
        key: BurstKey,
        at_ms: i64,
        slack_ms: i64,
    ) -> Result<Vec<LoggedBurst>, BurstLogError> {
        let mut found: Vec<LoggedBurst> = self
            .rows
            .iter()
            .filter(|r| r.key == key)
            .filter(|r| r.started_at_ms - slack_ms <= at_ms && at_ms <= r.ended_at_ms + slack_ms)
            .cloned()
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.started_at_ms));
        Ok(found)
    }

    fn recorded_since(&mut self, ended_from_ms: i64) -> Result<Vec<LoggedBurst>, BurstLogError> {
        Ok(self
            .rows
            .iter()
            .filter(|r| r.ended_at_ms >= ended_from_ms && r.recording.is_some())
            .filter(|r| !self.lost.contains(&r.id))
            .cloned()
            .collect())
    }

    fn newest_end(&mut self) -> Result<Option<i64>, BurstLogError> {
        Ok(self.rows.iter().map(|r| r.ended_at_ms).max())
    }

    fn mark_lost(&mut self, ids: &[i64], _at_ms: i64) -> Result<(), BurstLogError> {
        self.lost.extend_from_slice(ids);
        Ok(())
    }
}

/// A temporary file as a crash leaves it: `frames` frames added to a
/// recording whose first frame came at `first_ms` (its temporary name and
/// tag), a torn page behind what was synced.
fn crashed(root: &Path, burst: u32, first_ms: i64, frames: u16) -> PathBuf {
    let temp = root
        .join(PARTIAL_DIR)
        .join(format!("{first_ms}-g10-b{burst}-t301.opus.part"));
    std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
    let mut tags = tags();
    tags.burst = burst;
    tags.started_at_ms = first_ms;
    let mut rec = OpenRecording::create(temp.clone(), 9, &tags).unwrap();
    for seq in 0..frames {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    drop(rec);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&temp)
        .unwrap();
    file.write_all(b"OggS\0\0\x01\x02\x03 torn").unwrap();
    temp
}

const T: i64 = 1_738_311_300_000;

#[test]
fn a_torn_short_file_is_kept_and_named_as_its_row_names_it() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // 14 frames: one sync (at 10) wrote one short audio page of 200 ms.
    // The burst ended and its row was written, but the writer had not
    // patched the tag before the crash: the row's start names the file.
    let temp = crashed(r, 7, T + 40, 14);
    let mut rows = Rows::default();
    rows.add(1, 7, T, T + 300, true);
    // The same key from an earlier run of the relay: not this file's row.
    rows.add(2, 7, T - 60_000, T - 59_000, true);

    let done = recover::reconcile(r, &mut rows, None);
    assert_eq!((done.finished, done.deleted, done.errors), (1, 0, 0));
    assert!(done.unlogged.is_empty() && done.lost.is_empty());
    assert!(!temp.exists());
    let path = r.join(rows.rows[0].recording.as_deref().unwrap());
    let pages = pages(&std::fs::read(&path).expect("named as the row names it"));
    assert_eq!(pages.len(), 3, "headers and the one intact audio page");
    let last = pages.last().unwrap();
    assert_eq!((last.flags, last.granule), (ogg::FLAG_EOS, 10 * 960));
    let (_, tags) = comments(&pages[1].packets[0]);
    assert_eq!(
        tags[5], "STARTED=2025-01-31T08:15:00.000Z",
        "the row's start"
    );
}

#[test]
fn a_file_without_audio_goes_and_its_row_is_marked_lost() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // 5 frames: less than a sync window, nothing but the headers on disk.
    let temp = crashed(r, 8, T + 40, 5);
    let mut rows = Rows::default();
    rows.add(3, 8, T, T + 120, true);
    let done = recover::reconcile(r, &mut rows, None);
    assert_eq!((done.finished, done.deleted), (0, 1));
    assert!(!temp.exists());
    assert_eq!(done.lost, [3]);
    assert_eq!(rows.lost, [3]);
}

#[test]
fn a_file_whose_burst_has_no_row_is_kept_and_listed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // In flight at the crash: no row yet; named from its first frame.
    crashed(r, 9, T + 40, 25);
    let mut rows = Rows::default();
    let done = recover::reconcile(r, &mut rows, None);
    let relative = relative_path(10, T + 40, 9, 301);
    assert_eq!(done.finished, 1);
    assert_eq!(done.unlogged, std::slice::from_ref(&relative));
    let pages = pages(&std::fs::read(r.join(relative)).unwrap());
    assert_eq!(pages.last().unwrap().granule, 20 * 960);
    assert!(rows.lost.is_empty());
}

#[test]
fn a_file_whose_row_names_no_recording_is_kept_under_the_rows_name_and_listed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    crashed(r, 6, T + 40, 14);
    let mut rows = Rows::default();
    rows.add(4, 6, T, T + 300, false);
    let done = recover::reconcile(r, &mut rows, None);
    let relative = relative_path(10, T, 6, 301);
    assert_eq!(done.finished, 1);
    assert_eq!(done.unlogged, std::slice::from_ref(&relative));
    assert!(r.join(relative).exists());
}

#[test]
fn after_an_unclean_stop_the_last_rows_without_their_file_are_marked_lost() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let now = time::now_ms();
    let mut rows = Rows::default();
    // Ended just before the crash, no file and no temporary file (a power
    // cut took it): lost.
    rows.add(1, 1, now - 5_000, now - 4_000, true);
    // Its file is there: fine.
    rows.add(2, 2, now - 3_000, now - 2_000, true);
    std::fs::create_dir_all(r.join(time::date(now - 3_000))).unwrap();
    std::fs::write(r.join(relative_path(10, now - 3_000, 2, 301)), b"x").unwrap();
    // No recording named: nothing to lose.
    rows.add(3, 3, now - 1_500, now - 1_000, false);
    // Long before the crash: retention's business, not checked.
    rows.add(4, 4, now - 60_000, now - 59_000, true);

    let clean = recover::reconcile(r, &mut rows, None);
    assert!(clean.lost.is_empty(), "a clean stop checks no rows");
    let done = recover::reconcile(r, &mut rows, Some(None));
    assert_eq!(done.lost, [1]);
    assert_eq!(rows.lost, [1]);
    // Older than the age limit: retention deleted it, not the crash.
    let mut expired = Rows::default();
    expired.add(5, 5, now - 5_000, now - 4_000, true);
    let done = recover::reconcile(r, &mut expired, Some(Some(Duration::from_secs(1))));
    assert!(done.lost.is_empty());
}

#[test]
fn the_recorder_checks_the_last_rows_only_after_a_run_that_did_not_close() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let now = time::now_ms();
    let mut rows = Rows::default();
    rows.add(1, 1, now - 5_000, now - 4_000, true);
    let metrics = Arc::new(Counters::default());
    let start = |rows: &mut Rows| {
        Recorder::start_with_log(settings(r, 16), directory(), metrics.clone(), rows).unwrap()
    };
    // First start: no marker, nothing checked; closed cleanly.
    start(&mut rows).close();
    assert!(rows.lost.is_empty());
    // A run that never closes (killed): its marker stays, the next start
    // checks.
    let killed = start(&mut rows);
    let marker = std::fs::read(r.join(".running")).expect("kept while running");
    killed.close();
    std::fs::write(r.join(".running"), marker).unwrap();
    let again = start(&mut rows);
    assert_eq!(rows.lost, [1]);
    again.close();
    assert!(!r.join(".running").exists());
    assert_eq!(metrics.errors(), 0);
}
