//! The call log's side of recordings' crash recovery, on a real database.

use super::*;
use ptt_directory::{GroupId, Priority, TerminalId};
use ptt_recording::{BurstKey, BurstLog};

/// A burst row of group 10, talker 301.
fn burst(burst_id: u32, started_at_ms: i64, ended_at_ms: i64, recorded: bool) -> BurstRecord {
    BurstRecord {
        group: GroupId(10),
        talker: TerminalId(301),
        burst_id,
        started_at_ms,
        ended_at_ms,
        priority: Priority::Normal,
        kind: BurstKind::Normal,
        outcome: BurstOutcome::Released,
        frames: 10,
        recording: recorded.then(|| ptt_recording::relative_path(10, started_at_ms, burst_id, 301)),
    }
}

const KEY: BurstKey = BurstKey {
    group: 10,
    burst: 7,
    talker: 301,
};

const T: i64 = 1_738_311_300_000;

/// A call log holding `records`, closed; returns its directory and path.
async fn logged(records: Vec<BurstRecord>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pttd.sqlite");
    let log = CallLog::open(&path, 16).unwrap();
    for record in records {
        log.record_durable(record).await.unwrap();
    }
    log.close().await.unwrap();
    (dir, path)
}

#[tokio::test]
async fn a_recording_finds_the_row_whose_burst_spans_its_first_frame() {
    let (_dir, path) = logged(vec![
        // Burst 7 of an earlier run of the relay, then burst 7 of this one.
        burst(7, T - 600_000, T - 598_000, true),
        burst(7, T, T + 3_000, true),
        burst(8, T + 4_000, T + 5_000, false),
    ])
    .await;
    let mut rows = RecordingRows::open(&path).unwrap();
    let found = rows.bursts_around(KEY, T + 40, 2_000).unwrap();
    let ids: Vec<i64> = found.iter().map(|r| r.id).collect();
    assert_eq!(ids, [2]);
    assert_eq!(found[0].key, KEY);
    assert_eq!(found[0].started_at_ms, T);
    assert_eq!(
        found[0].recording.as_deref(),
        Some(ptt_recording::relative_path(10, T, 7, 301).as_str())
    );
    // A first frame long after every burst 7 ended belongs to none of them.
    assert!(
        rows.bursts_around(KEY, T + 60_000, 2_000)
            .unwrap()
            .is_empty()
    );
    assert_eq!(rows.newest_end().unwrap(), Some(T + 5_000));
    let recent: Vec<i64> = rows
        .recorded_since(T)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(recent, [2], "burst 8 names no recording");
}

#[tokio::test]
async fn a_row_marked_lost_says_so_and_is_not_listed_again() {
    let (_dir, path) = logged(vec![
        burst(7, T, T + 3_000, true),
        burst(8, T + 4_000, T + 5_000, true),
    ])
    .await;
    let mut rows = RecordingRows::open(&path).unwrap();
    rows.mark_lost(&[1], T + 60_000).unwrap();
    // Marking again keeps the first finding.
    rows.mark_lost(&[1], T + 90_000).unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    assert_eq!(reader.recording_lost_at(1).unwrap(), Some(T + 60_000));
    assert_eq!(reader.recording_lost_at(2).unwrap(), None);
    assert_eq!(reader.recording_lost_at(99).unwrap(), None);
    let listed = reader.burst_recordings(0, i64::MAX, 10).unwrap();
    let summary: Vec<(i64, u32, Option<i64>)> = listed
        .iter()
        .map(|r| (r.id, r.burst_id, r.lost_at_ms))
        .collect();
    assert_eq!(summary, [(2, 8, None), (1, 7, Some(T + 60_000))]);
    assert!(listed.iter().all(|r| r.recording.is_some()));
    let recent: Vec<i64> = rows
        .recorded_since(0)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(recent, [2]);
}

#[tokio::test]
async fn recovery_marks_the_row_of_a_file_a_crash_left_without_audio() {
    // Burst 7's row was written, its temporary file holds no audio page.
    let (dir, path) = logged(vec![burst(7, T, T + 100, true)]).await;
    let root = dir.path().join("recordings");
    let partial = root.join(ptt_recording::PARTIAL_DIR);
    std::fs::create_dir_all(&partial).unwrap();
    let temp = partial.join(format!("{}-g10-b7-t301.opus.part", T + 20));
    std::fs::write(&temp, b"OggS torn headers").unwrap();
    let mut rows = RecordingRows::open(&path).unwrap();
    let done = ptt_recording::recover::reconcile(&root, &mut rows, None);
    assert_eq!((done.deleted, done.errors), (1, 0));
    assert_eq!(done.lost, [1]);
    let reader = CallLogReader::open(&path).unwrap();
    assert!(reader.recording_lost_at(1).unwrap().is_some());
}

#[test]
fn recovery_needs_a_migrated_call_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sqlite");
    rusqlite::Connection::open(&path).unwrap();
    assert!(matches!(
        RecordingRows::open(&path),
        Err(CallLogError::Corrupt(_))
    ));
}

#[tokio::test]
async fn burst_rows_naming_a_recording_wait_for_the_commit_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let log = CallLog::open(&dir.path().join("pttd.sqlite"), 16).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    log.set_commit_barrier(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    // A burst without a recording and an admin record: no wait.
    log.record_durable(burst(1, T, T + 1, false)).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    log.record_durable(burst(2, T, T + 1, true)).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    log.close().await.unwrap();
}

#[tokio::test]
async fn another_relays_bursts_are_not_this_relays_recordings() {
    let (_dir, path) = logged(vec![burst(8, T - 10_000, T - 9_000, true)]).await;
    let log = CallLog::open(&path, 16).unwrap();
    // Burst 7 of relay-b, later than this relay's own: its recording is on
    // relay-b's disk.
    let origin = Origin {
        relay: "relay-b".to_owned(),
        id: "relay-b.1.1".to_owned(),
    };
    let replica = Record::Burst(burst(7, T, T + 3_000, true));
    assert!(log.record_replica(replica, origin).await.unwrap());
    log.close().await.unwrap();
    let mut rows = RecordingRows::open(&path).unwrap();
    assert!(rows.bursts_around(KEY, T + 40, 2_000).unwrap().is_empty());
    let recorded: Vec<i64> = rows
        .recorded_since(T - 20_000)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(recorded, [1]);
    assert_eq!(rows.newest_end().unwrap(), Some(T - 9_000));
}
