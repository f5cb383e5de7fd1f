//! Retention: by name and running total, on its own thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::burst::OpenRecording;
use super::retention::{self, Ledger, Limits};
use super::tests::{datagram, directory, settings, tags};
use super::*;

const DAY_MS: i64 = 86_400_000;
/// 2025-01-10T00:00:00Z.
const JAN_10: i64 = 1_736_467_200_000;

/// A finished recording of `len` bytes whose burst started at `start_ms`,
/// where the writer puts it.
fn recording(root: &Path, start_ms: i64, burst: u32, len: usize) -> PathBuf {
    let path = root.join(relative_path(10, start_ms, burst, 301));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![0u8; len]).unwrap();
    path
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn retention_deletes_by_the_start_in_the_name_and_empties_whole_days() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let now = JAN_10 + 12 * 3_600_000; // noon
    let limits = Limits {
        max_age: Some(Duration::from_secs(2 * 86_400)),
        max_bytes: None,
    };
    // Jan 7 and 6 are wholly older than two days; Jan 8 is the day the
    // limit (Jan 8, noon) falls in; Jan 9 is young.
    let jan6 = recording(r, JAN_10 - 4 * DAY_MS, 1, 10);
    let jan7 = recording(r, JAN_10 - 3 * DAY_MS + 5, 2, 10);
    let jan7_notes = r.join("2025-01-07/notes.txt");
    std::fs::write(&jan7_notes, b"not ours").unwrap();
    let jan8_morning = recording(r, JAN_10 - 2 * DAY_MS + 3_600_000, 3, 10);
    let jan8_evening = recording(r, JAN_10 - 2 * DAY_MS + 20 * 3_600_000, 4, 10);
    let jan9 = recording(r, JAN_10 - DAY_MS, 5, 10);
    // Being written: in the partial folder, which retention never enters.
    let open = r.join(PARTIAL_DIR).join("1-g10-b6-t301.opus.part");
    std::fs::create_dir_all(open.parent().unwrap()).unwrap();
    std::fs::write(&open, b"open").unwrap();

    let ledger = Ledger::default();
    assert_eq!(retention::scan(r, now, &ledger, &never()), 0);
    assert_eq!(ledger.total(), 50);
    let swept = retention::enforce(r, limits, &ledger, now, &never());
    assert_eq!(
        (swept.deleted, swept.deleted_bytes, swept.errors),
        (3, 30, 0)
    );
    assert_eq!(swept.kept_bytes, 20);
    assert!(!jan6.exists() && !jan7.exists() && !jan8_morning.exists());
    assert!(jan8_evening.exists() && jan9.exists() && open.exists());
    assert!(!r.join("2025-01-06").exists(), "an emptied day folder goes");
    assert!(jan7_notes.exists(), "only recordings are touched");
    // No limits: nothing goes; a missing root is no error.
    let none = retention::enforce(r, Limits::default(), &ledger, now, &never());
    assert_eq!((none.deleted, none.errors), (0, 0));
    let missing = retention::enforce(&r.join("nope"), limits, &Ledger::default(), now, &never());
    assert_eq!(missing, retention::Swept::default());
}

#[test]
fn retention_deletes_the_oldest_beyond_the_size_limit_by_the_running_total() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let oldest = recording(r, JAN_10 - DAY_MS, 1, 1000);
    let older = recording(r, JAN_10 - DAY_MS + 1, 2, 1000);
    let newer = recording(r, JAN_10, 3, 1000);
    let open = r.join(PARTIAL_DIR).join("1-g10-b9-t301.opus.part");
    std::fs::create_dir_all(open.parent().unwrap()).unwrap();
    std::fs::write(&open, vec![0u8; 50_000]).unwrap();

    // The scan counts what started before the recorder did; the writer
    // counts the rest (here `newest`, finished after the start).
    let ledger = Ledger::default();
    retention::scan(r, JAN_10 + 1, &ledger, &never());
    assert_eq!(ledger.total(), 3000, "open recordings are not counted");
    let newest = recording(r, JAN_10 + 2, 4, 1000);
    assert_eq!(ledger.add("2025-01-10", 1000), 4000);
    let scan_again = Ledger::default();
    retention::scan(r, JAN_10 + 1, &scan_again, &never());
    assert_eq!(
        scan_again.total(),
        3000,
        "the writer's files are not counted twice"
    );

    let limits = Limits {
        max_age: None,
        max_bytes: Some(2500),
    };
    let swept = retention::enforce(r, limits, &ledger, JAN_10, &never());
    assert_eq!((swept.deleted, swept.deleted_bytes), (2, 2000));
    assert_eq!((swept.kept_bytes, ledger.total()), (2000, 2000));
    assert!(!oldest.exists() && !older.exists());
    assert!(!r.join("2025-01-09").exists());
    assert!(newer.exists() && newest.exists() && open.exists());
    // Within a day, the earlier start goes first.
    let limits = Limits {
        max_bytes: Some(1500),
        ..limits
    };
    retention::enforce(r, limits, &ledger, JAN_10, &never());
    assert!(!newer.exists() && newest.exists());
    // Asked to stop, a pass deletes nothing more.
    let stop = AtomicBool::new(true);
    let limits = Limits {
        max_bytes: Some(0),
        ..limits
    };
    assert_eq!(
        retention::enforce(r, limits, &ledger, JAN_10, &stop).deleted,
        0
    );
    assert!(newest.exists());
}

/// The size a recording of `frames` test frames gets.
fn recording_len(frames: u16) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = OpenRecording::create(dir.path().join("x.opus.part"), 1, &tags()).unwrap();
    for seq in 0..frames {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    rec.finish().unwrap().unwrap().len
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_recorder_wakes_retention_when_the_total_passes_the_size_limit() {
    let root = tempfile::tempdir().unwrap();
    let len = recording_len(20);
    // From an earlier run, counted by the start's scan.
    let earlier = recording(root.path(), 1_600_000_000_000, 1, len as usize);
    let mut settings = settings(root.path(), 256);
    settings.limits.max_bytes = Some(len + len / 2);
    let metrics = Arc::new(Counters::default());
    let recorder = Recorder::start(settings, directory(), metrics.clone()).unwrap();

    let mut files = Vec::new();
    for burst in [7, 8] {
        for seq in 0..20 {
            assert!(recorder.offer(10, burst, 301, seq, &datagram(seq, seq)));
        }
        let started = super::time::now_ms();
        let relative = recorder.finish(10, burst, 301, started, 20).unwrap();
        let path = root.path().join(relative);
        wait_for("the recording appears", || path.exists());
        // Two recordings do not fit: the older one goes at once, not at the
        // next periodic pass ten minutes later.
        let older = files.last().unwrap_or(&earlier).clone();
        wait_for("retention deletes the older recording", || !older.exists());
        assert!(path.exists(), "the newest recording is kept");
        files.push(path);
    }
    recorder.close();
    assert_eq!(metrics.errors(), 0);
    assert_eq!(metrics.written(), 2);
}

#[test]
fn retention_deletes_a_recovered_recording_only_by_the_limits() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let now = JAN_10 + 12 * 3_600_000;
    // A crash left burst 7's file (started an hour ago, 30 frames synced);
    // an older recording is on disk.
    let older = recording(r, now - 2 * 3_600_000, 1, 100);
    let temp = r
        .join(PARTIAL_DIR)
        .join(format!("{}-g10-b7-t301.opus.part", now - 3_600_000));
    std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
    let mut tags = tags();
    tags.started_at_ms = now - 3_600_000;
    let mut rec = OpenRecording::create(temp, 1, &tags).unwrap();
    for seq in 0..33 {
        rec.add(seq, datagram(seq, seq)).unwrap();
    }
    drop(rec);
    assert_eq!(recover::orphans(r).finished, 1);
    let recovered = r.join(relative_path(10, now - 3_600_000, 7, 301));
    let len = std::fs::metadata(&recovered).unwrap().len();

    // Counted like any recording from before the start: a size limit that
    // holds both deletes neither, nor does an age limit both are within.
    let ledger = Ledger::default();
    retention::scan(r, now, &ledger, &never());
    assert_eq!(ledger.total(), 100 + len);
    let limits = Limits {
        max_age: Some(Duration::from_secs(3 * 3_600)),
        max_bytes: Some(100 + len),
    };
    let swept = retention::enforce(r, limits, &ledger, now, &never());
    assert_eq!(swept.deleted, 0);
    assert!(older.exists() && recovered.exists());
    // Over the size limit the oldest goes first, the recovered one stays.
    let limits = Limits {
        max_bytes: Some(len),
        ..limits
    };
    let swept = retention::enforce(r, limits, &ledger, now, &never());
    assert_eq!(swept.deleted, 1);
    assert!(!older.exists() && recovered.exists());
    // Expired by age, it goes too.
    let limits = Limits {
        max_age: Some(Duration::from_secs(1_800)),
        max_bytes: None,
    };
    assert_eq!(
        retention::enforce(r, limits, &ledger, now, &never()).deleted,
        1
    );
    assert!(!recovered.exists());
}
