//! Records of other relays of a cluster: stored once each, readable like this relay's own.

use super::*;
use ptt_directory::{GroupId, Priority, TerminalId};

fn burst(n: u32) -> Record {
    Record::Burst(BurstRecord {
        group: GroupId(11),
        talker: TerminalId(300 + n),
        burst_id: n,
        started_at_ms: 1_000 + i64::from(n),
        ended_at_ms: 2_000 + i64::from(n),
        priority: Priority::Dispatcher,
        kind: BurstKind::Emergency,
        outcome: BurstOutcome::RevokedTalkLimit,
        frames: 50,
        recording: Some("2026/12/07/g11-1.opus".to_owned()),
    })
}

fn origin(id: &str) -> Origin {
    Origin {
        relay: "relay-a".to_owned(),
        id: id.to_owned(),
    }
}

#[tokio::test]
async fn a_record_handed_over_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pttd.sqlite");
    let log = CallLog::open(&path, 100).unwrap();
    assert!(log.record_replica(burst(1), origin("a-1-1")).await.unwrap());
    assert!(!log.record_replica(burst(1), origin("a-1-1")).await.unwrap());
    // The same origin twice in one batch, and another record beside it.
    let again = log.record_replica(burst(1), origin("a-1-1"));
    let other = log.record_replica(burst(2), origin("a-1-2"));
    let (again, other) = tokio::join!(again, other);
    assert!(!again.unwrap());
    assert!(other.unwrap());
    log.record(match burst(3) {
        Record::Burst(b) => b,
        _ => unreachable!(),
    })
    .unwrap();
    log.flush().await.unwrap();
    let reader = CallLogReader::open(&path).unwrap();
    let rows = reader.bursts(Some(GroupId(11)), 0, i64::MAX, 10).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(Record::Burst(rows[2].record.clone()), burst(1));
    let relays: Vec<String> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT relay FROM replicas WHERE tbl = 'bursts' ORDER BY row_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(relays, ["relay-a", "relay-a"]);
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let others = reader.written_by_other_relays("bursts", &ids).unwrap();
    assert_eq!(others.len(), 2, "{others:?}");
    assert!(others.values().all(|relay| relay == "relay-a"));
    assert!(
        !others.contains_key(&rows[0].id),
        "the newest row is this relay's own"
    );
    log.close().await.unwrap();
}

#[test]
fn every_record_kind_survives_its_trip_between_relays() {
    let records = [
        burst(7),
        Record::AlertAck(AlertAckRecord {
            alert_id: 9,
            terminal: TerminalId(301),
            kind: AckKind::Responding,
            status_code: Some(3),
            at_ms: 5,
        }),
        Record::AuthFailure(AuthFailureRecord {
            terminal: None,
            source: "127.0.0.1:4000".parse().unwrap(),
            at_ms: 6,
        }),
        Record::Status(StatusRecord {
            from: TerminalId(302),
            code: 4,
            text: "on scene".to_owned(),
            target: StatusTarget::Group(GroupId(11)),
            at_ms: 7,
        }),
        Record::Regroup(RegroupRecord {
            group: GroupId(11),
            terminal: TerminalId(303),
            added: true,
            reason: RegroupReason::Backup,
            zone: ptt_directory::ZoneId(2),
            at_ms: 8,
        }),
    ];
    for record in records {
        let text = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record, "{text}");
    }
}
