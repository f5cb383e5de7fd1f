use super::*;
use ptt_directory::{GroupId, Priority, TerminalId};

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
        "ALTER TABLE bursts DROP COLUMN recording_lost_at_ms; \
         ALTER TABLE bursts DROP COLUMN recording; DROP TABLE regroups; \
         DROP TABLE private_calls; DROP TABLE status_messages; DROP TABLE replicas; PRAGMA user_version = 2;",
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

fn regroup(group: u32, terminal: u32, added: bool, reason: RegroupReason, at_ms: i64) -> Record {
    Record::Regroup(RegroupRecord {
        group: GroupId(group),
        terminal: TerminalId(terminal),
        added,
        reason,
        zone: ptt_directory::ZoneId(100 + terminal % 10),
        at_ms,
    })
}

#[tokio::test]
async fn regroups_read_back_newest_first_by_group_and_window() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 64).unwrap();
    // A patrol (31) picks up 301 and 302 and lets them go; a backup call in 101 pulls in
    // 331. The two let-gos share a millisecond: the one logged last comes first.
    let records = [
        regroup(31, 301, true, RegroupReason::ZoneEntered, 1_000),
        regroup(31, 302, true, RegroupReason::ZoneEntered, 1_000),
        regroup(101, 331, true, RegroupReason::Backup, 1_500),
        regroup(31, 301, false, RegroupReason::ZoneLeft, 2_000),
        regroup(31, 302, false, RegroupReason::ZoneLeft, 2_000),
        regroup(101, 331, false, RegroupReason::BackupCleared, 2_500),
    ];
    for record in &records {
        log.record(record.clone()).unwrap();
    }
    log.flush().await.unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    let summary = |rows: &[RegroupRow]| -> Vec<(u32, u32, bool, &'static str, i64)> {
        rows.iter()
            .map(|r| {
                let g = &r.record;
                (g.group.0, g.terminal.0, g.added, g.reason.as_str(), g.at_ms)
            })
            .collect()
    };
    let all = reader.regroups(None, 0, i64::MAX, 100).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(Record::Regroup(all[5].record.clone()), records[0]);
    assert_eq!(
        summary(&all)[..3],
        [
            (101, 331, false, "backup-cleared", 2_500),
            (31, 302, false, "zone-left", 2_000),
            (31, 301, false, "zone-left", 2_000),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id != w[1].id));
    let patrol = reader
        .regroups(Some(GroupId(31)), 0, i64::MAX, 100)
        .unwrap();
    assert_eq!(
        summary(&patrol),
        [
            (31, 302, false, "zone-left", 2_000),
            (31, 301, false, "zone-left", 2_000),
            (31, 302, true, "zone-entered", 1_000),
            (31, 301, true, "zone-entered", 1_000),
        ]
    );
    assert_eq!(patrol[3].record.zone, ptt_directory::ZoneId(101));
    // Half-open window, limit, a group with no changes.
    let window = reader.regroups(None, 1_000, 2_000, 100).unwrap();
    assert_eq!(window.len(), 3, "{:?}", summary(&window));
    assert_eq!(
        reader
            .regroups(Some(GroupId(31)), 0, 1_001, 1)
            .unwrap()
            .len(),
        1
    );
    assert!(
        reader
            .regroups(Some(GroupId(7)), 0, i64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    // The last changes as logged, whatever their timestamps.
    let last = reader.last_regroups(2).unwrap();
    assert_eq!(
        summary(&last),
        [
            (101, 331, false, "backup-cleared", 2_500),
            (31, 302, false, "zone-left", 2_000),
        ]
    );
    assert!(last[0].id > last[1].id);
    assert_eq!(reader.last_regroups(100).unwrap().len(), 6);
    log.close().await.unwrap();
}

#[tokio::test]
async fn private_calls_read_back_with_their_outcome() {
    let (_dir, path) = db();
    let log = CallLog::open(&path, 64).unwrap();
    let completed = PrivateCallRecord {
        call_id: 1,
        caller: TerminalId(100),
        callee: TerminalId(101),
        group: GroupId(0xF000_0000),
        emergency: false,
        outcome: PrivateCallOutcome::Completed,
        started_at_ms: 10_000,
        answered_at_ms: Some(10_400),
        ended_at_ms: 30_000,
    };
    let offline = PrivateCallRecord {
        call_id: u64::from(u32::MAX) + 7,
        callee: TerminalId(103),
        emergency: true,
        outcome: PrivateCallOutcome::Offline,
        started_at_ms: 40_000,
        answered_at_ms: None,
        ended_at_ms: 40_001,
        ..completed.clone()
    };
    log.record(completed.clone()).unwrap();
    log.record(offline.clone()).unwrap();
    log.flush().await.unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    let rows = reader.private_calls(0, i64::MAX, 10).unwrap();
    let records: Vec<&PrivateCallRecord> = rows.iter().map(|r| &r.record).collect();
    assert_eq!(
        records,
        [&offline, &completed],
        "newest first, read back whole"
    );
    let window = reader.private_calls(10_000, 40_000, 10).unwrap();
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].record, completed);
    assert_eq!(
        reader.private_calls(0, i64::MAX, 1).unwrap()[0].record,
        offline
    );
    assert!(
        reader
            .private_calls(50_000, i64::MAX, 10)
            .unwrap()
            .is_empty()
    );
    log.close().await.unwrap();
}

#[tokio::test]
async fn an_unreadable_regroup_or_call_is_an_error_not_a_panic() {
    let (_dir, path) = db();
    CallLog::open(&path, 1).unwrap().close().await.unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO regroups (group_id, terminal, change, reason, zone, at_ms)
         VALUES (31, 301, 'sideways', 'zone-entered', 101, 1000)",
        [],
    )
    .unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    for result in [
        reader.regroups(None, 0, i64::MAX, 10),
        reader.regroups(Some(GroupId(31)), 0, i64::MAX, 10),
        reader.last_regroups(10),
    ] {
        assert!(matches!(result, Err(CallLogError::Corrupt(ref m)) if m.contains("sideways")));
    }
    conn.execute_batch(
        "UPDATE regroups SET change = 'added', reason = 'teleported';
         INSERT INTO private_calls (call_id, caller, callee, group_id, emergency, outcome,
           started_at_ms, answered_at_ms, ended_at_ms)
         VALUES (1, -5, 101, 4026531840, 0, 'completed', 1, NULL, 2);",
    )
    .unwrap();
    assert!(matches!(
        reader.last_regroups(10),
        Err(CallLogError::Corrupt(ref m)) if m.contains("teleported")
    ));
    assert!(matches!(
        reader.private_calls(0, i64::MAX, 10),
        Err(CallLogError::Corrupt(ref m)) if m.contains("-5")
    ));
}

#[test]
fn an_admin_action_travels_as_json_tagged_with_its_column_name() {
    let actions = [
        AdminAction::Disable {
            terminal: TerminalId(7),
        },
        AdminAction::SetMember {
            group: GroupId(11),
            terminal: TerminalId(7),
            listen: true,
            talk: false,
            max_priority: Some(Priority::Elevated),
        },
        AdminAction::ClearEmergency { group: GroupId(11) },
    ];
    for action in actions {
        let json = serde_json::to_value(&action).unwrap();
        assert_eq!(json["action"], action.as_str(), "{json}");
        let back: AdminAction = serde_json::from_value(json).unwrap();
        assert_eq!(back, action);
    }
}
