use super::*;
use crate::directory::{GroupId, Priority, TerminalId};

fn burst(n: u32) -> BurstRecord {
    BurstRecord {
        group: GroupId(10 + n % 3),
        talker: TerminalId(300 + n),
        burst_id: n,
        started_at_ms: 1_000 + i64::from(n),
        ended_at_ms: 2_000 + i64::from(n),
        priority: Priority::Normal,
        kind: BurstKind::Normal,
        outcome: BurstOutcome::Released,
        frames: 50 * n,
        recording: None,
    }
}

fn db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("pttd.sqlite");
    (dir, path)
}

/// Holds the database's write lock so the writer stalls (up to its 5 s busy timeout).
fn lock(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    c
}

fn unlock(c: Connection) {
    c.execute_batch("COMMIT").unwrap();
}

#[tokio::test]
async fn writes_are_batched() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 1000).unwrap();
    let held = lock(&path);
    for n in 0..200 {
        log.record(burst(n)).unwrap();
    }
    unlock(held);
    log.flush().await.unwrap();
    let s = log.stats();
    assert_eq!((s.queued, s.written, s.dropped, s.failed), (200, 200, 0, 0));
    assert!(s.batches <= 3, "{s:?}");
    let reader = CallLogReader::open(&path).unwrap();
    assert_eq!(reader.counts().unwrap().bursts, 200);
    let group = reader.bursts(Some(GroupId(10)), 0, i64::MAX, 1000).unwrap();
    assert_eq!(group.len(), 67);
    assert!(
        group
            .windows(2)
            .all(|w| w[0].record.started_at_ms >= w[1].record.started_at_ms)
    );
    assert_eq!(reader.bursts(None, 1_000, 1_010, 5).unwrap().len(), 5);
    log.close().await.unwrap();
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 4).unwrap();
    let held = lock(&path);
    let mut dropped = 0;
    for n in 0..100 {
        if log.record(burst(n)) == Err(Dropped) {
            dropped += 1;
        }
    }
    let s = log.stats();
    assert!(dropped > 0);
    assert_eq!(s.dropped, dropped);
    assert_eq!(s.queued + s.dropped, 100);
    unlock(held);
    log.flush().await.unwrap();
    assert_eq!(log.stats().written, log.stats().queued);
    log.close().await.unwrap();
}

#[tokio::test]
async fn durable_record_is_committed_when_it_resolves() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 16).unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    let e = EmergencyRecord {
        group: GroupId(2),
        terminal: TerminalId(301),
        declared_at_ms: 5_000,
    };
    let id = log.record_durable(e).await.unwrap();
    // Visible to another connection at once: committed, not just queued.
    let rows = reader.emergencies(None, 0, i64::MAX, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].id, rows[0].cleared), (id, None));
    let c = EmergencyClearedRecord {
        group: GroupId(2),
        by: TerminalId(1),
        at_ms: 6_000,
    };
    log.record_durable(c).await.unwrap();
    let rows = reader
        .emergencies(Some(GroupId(2)), 0, i64::MAX, 10)
        .unwrap();
    assert_eq!(rows[0].cleared, Some((TerminalId(1), 6_000)));
    let second = log.record_durable(burst(1)).await.unwrap();
    let third = log.record_durable(burst(2)).await.unwrap();
    assert_eq!(third, second + 1);
    log.close().await.unwrap();
}

#[tokio::test]
async fn reopen_after_close_reads_everything() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 64).unwrap();
    let alert = AlertSentRecord {
        alert_id: 7,
        from: TerminalId(1),
        text: "Suspect heading north on Trunk Road 2".to_owned(),
        groups: vec![GroupId(2), GroupId(32)],
        at_ms: 10_000,
    };
    let ack = |t, kind, code, at| AlertAckRecord {
        alert_id: 7,
        terminal: TerminalId(t),
        kind,
        status_code: code,
        at_ms: at,
    };
    let fail = AuthFailureRecord {
        terminal: None,
        source: "127.0.0.1:5555".parse().unwrap(),
        at_ms: 9_000,
    };
    let session = SessionRecord {
        terminal: TerminalId(301),
        event: SessionEvent::Connected,
        at_ms: 8_000,
    };
    log.record(alert.clone()).unwrap();
    log.record(ack(301, AckKind::Delivered, None, 10_100))
        .unwrap();
    log.record(ack(302, AckKind::Responding, Some(2), 10_200))
        .unwrap();
    log.record(fail.clone()).unwrap();
    log.record(session.clone()).unwrap();
    let b = BurstRecord {
        priority: Priority::Emergency,
        kind: BurstKind::Emergency,
        outcome: BurstOutcome::Preempted,
        recording: Some("1970-01-01/1003-g10-b3-t303.opus".to_owned()),
        ..burst(3)
    };
    log.record(b.clone()).unwrap();
    let clone = log.clone();
    log.close().await.unwrap();
    assert_eq!(clone.record(burst(9)), Err(Dropped));
    assert!(matches!(
        clone.record_durable(burst(9)).await,
        Err(CallLogError::Closed)
    ));

    // Reopening migrates nothing and keeps every row.
    let log = CallLog::open(&path, 4).unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    let counts = reader.counts().unwrap();
    assert_eq!(
        counts,
        Counts {
            bursts: 1,
            alerts: 1,
            alert_acks: 2,
            emergencies: 0,
            emergency_clears: 0,
            auth_failures: 1,
            sessions: 1
        }
    );
    let alerts = reader.alerts(0, i64::MAX, 10).unwrap();
    assert_eq!(alerts[0].alert, alert);
    assert_eq!(
        alerts[0].acks,
        vec![
            ack(301, AckKind::Delivered, None, 10_100),
            ack(302, AckKind::Responding, Some(2), 10_200)
        ]
    );
    assert_eq!(reader.bursts(None, 0, i64::MAX, 10).unwrap()[0].record, b);
    assert_eq!(
        reader.auth_failures(0, i64::MAX, 10).unwrap()[0].record,
        fail
    );
    assert_eq!(
        reader
            .sessions(Some(TerminalId(301)), 0, i64::MAX, 10)
            .unwrap()[0]
            .record,
        session
    );
    assert!(
        reader
            .sessions(Some(TerminalId(302)), 0, i64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn migration_is_idempotent_and_refuses_newer_schema() {
    let (_dir, path) = db();
    for _ in 0..3 {
        CallLog::open(&path, 1).unwrap().close().await.unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    assert_eq!(schema::user_version(&conn).unwrap(), schema::VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        CallLog::open(&path, 1),
        Err(CallLogError::TooNew { found: 99, .. })
    ));
    assert!(matches!(
        CallLogReader::open(&path),
        Err(CallLogError::TooNew { .. })
    ));
}

#[tokio::test]
async fn a_log_from_before_recordings_gains_the_recording_column() {
    let (_dir, path) = db();
    CallLog::open(&path, 1).unwrap().close().await.unwrap();
    // Turn it back into the schema before version 3, with a burst in it.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE bursts DROP COLUMN recording; DROP TABLE regroups; \
         DROP TABLE private_calls; PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO bursts (group_id, talker, burst_id, started_at_ms, ended_at_ms, priority,
         kind, outcome, frames) VALUES (10, 301, 1, 1001, 2001, 'normal', 'normal', 'released', 50)",
        [],
    )
    .unwrap();
    drop(conn);
    let log = CallLog::open(&path, 1).unwrap();
    let with_file = BurstRecord {
        recording: Some("1970-01-01/1002-g11-b2-t302.opus".to_owned()),
        ..burst(2)
    };
    log.record_durable(with_file.clone()).await.unwrap();
    log.close().await.unwrap();
    let rows = CallLogReader::open(&path)
        .unwrap()
        .bursts(None, 0, i64::MAX, 10)
        .unwrap();
    assert_eq!(rows[0].record, with_file);
    assert_eq!(rows[1].record.recording, None);
    assert_eq!(rows[1].record.talker, TerminalId(301));
}

#[tokio::test]
async fn dropping_every_handle_stops_the_writer_after_writing() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 8).unwrap();
    log.record(burst(1)).unwrap();
    let writer = log.writer.lock().unwrap().take().unwrap();
    drop(log);
    writer.join().unwrap();
    assert_eq!(
        CallLogReader::open(&path).unwrap().counts().unwrap().bursts,
        1
    );
}

#[test]
fn text_enums_round_trip() {
    for o in [
        BurstOutcome::Released,
        BurstOutcome::RevokedTalkLimit,
        BurstOutcome::Preempted,
        BurstOutcome::MediaInactivity,
        BurstOutcome::Left,
        BurstOutcome::Disconnected,
        BurstOutcome::Shutdown,
    ] {
        assert_eq!(BurstOutcome::from_name(o.as_str()), Some(o));
    }
    assert_eq!(BurstKind::from_name("bogus"), None);
    assert!(now_ms() > 1_600_000_000_000);
}

#[test]
fn open_in_unwritable_place_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    // A regular file where the data dir should be.
    assert!(CallLog::open(&file.join("pttd.sqlite"), 1).is_err());
    // Not a database.
    std::fs::write(&file, "not a database\n".repeat(512)).unwrap();
    assert!(CallLog::open(&file, 1).is_err());
}
