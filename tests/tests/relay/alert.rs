//! Alerts with roll call through the real relay: a dispatcher's alert
//! reaches every online member of the target groups once, the answers are
//! tallied for the dispatcher and the control room, and everything is in the
//! call log.

use std::collections::HashMap;
use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::{Client, TestDirectory, TestRelay};

fn alert(text: &str, groups: &[u32]) -> Request {
    Request::Alert(pb::Alert {
        text: text.into(),
        target_group_ids: groups.to_vec(),
        requires_ack: true,
        ..Default::default()
    })
}

fn answer(alert_id: u64, kind: pb::AlertAckKind, status_code: Option<u32>) -> Request {
    Request::AlertAck(pb::AlertAck {
        alert_id,
        kind: kind.into(),
        status_code,
    })
}

fn error_reason(body: &Body) -> Option<pb::ErrorReason> {
    match body {
        Body::Error(e) => pb::ErrorReason::try_from(e.reason).ok(),
        _ => None,
    }
}

fn tally(body: &Body) -> Option<pb::AlertTally> {
    match body {
        Body::AlertTally(t) => Some(t.clone()),
        _ => None,
    }
}

/// The next `Alert` event with id `id`, or `None` after `wait`.
async fn alert_within(client: &mut Client, id: u64, wait: Duration) -> Option<pb::Alert> {
    let message = client
        .expect_within(wait, |m| {
            m.request_id == 0 && matches!(&m.body, Some(Body::Alert(a)) if a.alert_id == id)
        })
        .await
        .expect("control stream open")?;
    match message.body {
        Some(Body::Alert(a)) => Some(a),
        _ => None,
    }
}

/// The next `AlertTally` event of alert `id`.
async fn tally_event(client: &mut Client, id: u64) -> anyhow::Result<pb::AlertTally> {
    let message = client
        .expect(|m| {
            m.request_id == 0 && matches!(&m.body, Some(Body::AlertTally(t)) if t.alert_id == id)
        })
        .await?;
    Ok(message.body.as_ref().and_then(tally).expect("a tally"))
}

/// Dispatchers 1 (sender) and 2 (control room); guards 100..200 in three
/// target groups, with 140 in two of them; 190..200 stay offline.
fn roll_call_district() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(1)
        .dispatcher(2)
        .guards(100..200)
        .group_with(5, "control-room", [1, 2], &[])
        .group_with(10, "district", std::iter::once(1).chain(100..=140), &[])
        .group(20, 140..170)
        .group(30, 170..200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_call_of_a_hundred_reaches_each_once_and_tallies_every_answer() -> anyhow::Result<()> {
    let relay = TestRelay::start(&roll_call_district()).await?;
    let mut all = relay.connect_all([1, 2].into_iter().chain(100..190)).await;
    let mut guards = all.split_off(2);
    let mut dispatchers = all.into_iter();
    let (mut sender, mut watcher) = (
        dispatchers.next().expect("dispatcher 1"),
        dispatchers.next().expect("dispatcher 2"),
    );

    // Only dispatchers alert, and only groups that exist.
    let refused = guards[0].request(alert("not mine", &[10])).await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Forbidden));
    let refused = sender.request(alert("typo", &[10, 999])).await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::UnknownGroup));

    // The answer is the first tally: every member, online or not.
    let first = sender
        .request(alert("roll call: report in", &[10, 20, 30]))
        .await?;
    let first = tally(&first).unwrap_or_else(|| panic!("not a tally: {first:?}"));
    let id = first.alert_id;
    assert_ne!(id, 0, "the relay assigns the id");
    assert_eq!(
        (
            first.targets,
            first.delivered,
            first.responding,
            first.unable
        ),
        (100, 0, 0, 0),
        "100 guards addressed (10 of them offline), the sender not among them"
    );
    // Every target is named, none answered yet: a console can say who
    // never answers.
    assert_eq!(first.entries.len(), 100);
    assert!(
        first
            .entries
            .iter()
            .all(|e| e.kind() == pb::AlertAckKind::Unspecified && !e.name.is_empty()),
        "{:?}",
        first.entries.first()
    );
    let watched = tally_event(&mut watcher, id).await?;
    assert_eq!((watched.targets, watched.delivered), (100, 0));

    // Every online guard hears it once, stamped by the relay.
    for guard in &mut guards {
        let heard = alert_within(guard, id, ptt_tests::PATIENCE)
            .await
            .unwrap_or_else(|| panic!("{} did not get the alert", guard.terminal));
        assert_eq!(
            (heard.from_terminal_id, heard.from_name.as_str()),
            (1, "T1")
        );
        assert_eq!(heard.text, "roll call: report in");
        assert_eq!(heard.target_group_ids, vec![10, 20, 30]);
        assert!(heard.requires_ack && heard.sent_at_us > 0);
    }
    let twice = &mut guards[40];
    assert_eq!(twice.terminal, 140, "member of groups 10 and 20");
    assert!(
        alert_within(twice, id, Duration::from_millis(300))
            .await
            .is_none(),
        "a terminal in two target groups hears the alert once"
    );
    assert!(
        alert_within(&mut sender, id, Duration::ZERO)
            .await
            .is_none(),
        "no echo to the sender"
    );

    // All answer DELIVERED; 100..120 then respond with status 8, 120..125
    // cannot.
    let mut pending = Vec::new();
    for guard in &mut guards {
        let delivered = answer(id, pb::AlertAckKind::Delivered, None);
        pending.push((guard.terminal, guard.send(delivered).await?));
        let second = match guard.terminal {
            100..120 => Some(answer(id, pb::AlertAckKind::Responding, Some(8))),
            120..125 => Some(answer(id, pb::AlertAckKind::Unable, None)),
            _ => None,
        };
        if let Some(second) = second {
            pending.push((guard.terminal, guard.send(second).await?));
        }
    }
    for (terminal, request) in pending {
        let guard = &mut guards[(terminal - 100) as usize];
        let answered = guard.expect(|m| m.request_id == request).await?;
        assert!(
            matches!(answered.body, Some(Body::Ack(_))),
            "answer of {terminal} acknowledged: {answered:?}"
        );
    }

    // The sender's tallies add up to the final state, entry by entry.
    let mut latest: HashMap<u32, pb::AlertAckEntry> = HashMap::new();
    let last = loop {
        let tally = tally_event(&mut sender, id).await?;
        assert_eq!(tally.targets, 100);
        assert!(!tally.entries.is_empty(), "a tally event says what changed");
        for entry in &tally.entries {
            latest.insert(entry.terminal_id, entry.clone());
        }
        if (tally.delivered, tally.responding, tally.unable) == (90, 20, 5) {
            break tally;
        }
    };
    assert_eq!(
        last.targets - last.delivered,
        10,
        "not reached: the offline"
    );
    assert_eq!(latest.len(), 90);
    let kinds = |kind: pb::AlertAckKind| {
        let mut ids: Vec<u32> = latest
            .values()
            .filter(|e| e.kind == i32::from(kind))
            .map(|e| e.terminal_id)
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        kinds(pb::AlertAckKind::Responding),
        (100..120).collect::<Vec<_>>()
    );
    assert_eq!(
        kinds(pb::AlertAckKind::Unable),
        (120..125).collect::<Vec<_>>()
    );
    assert_eq!(kinds(pb::AlertAckKind::Delivered).len(), 65);
    assert_eq!(latest[&100].status_code, Some(8));
    assert_eq!(latest[&100].name, "T100");
    // The control room watches the same roll call.
    loop {
        let tally = tally_event(&mut watcher, id).await?;
        if (tally.delivered, tally.responding, tally.unable) == (90, 20, 5) {
            break;
        }
    }

    // Answers to unknown alerts, or to alerts not addressed to the
    // terminal, are refused.
    let refused = guards[0]
        .request(answer(id + 12_345, pb::AlertAckKind::Delivered, None))
        .await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::UnknownAlert));
    let refused = watcher
        .request(answer(id, pb::AlertAckKind::Responding, None))
        .await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Forbidden));

    // The alert and every answer are in the call log.
    let data = relay.stop().await?;
    let db = rusqlite::Connection::open(data.path().join("pttd.sqlite"))?;
    let (from, text, groups): (u32, String, String) = db.query_row(
        "SELECT from_terminal, text, groups FROM alerts WHERE alert_id = ?1",
        [id as i64],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    assert_eq!(
        (from, text.as_str(), groups.as_str()),
        (1, "roll call: report in", "10,20,30")
    );
    let alerts: i64 = db.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))?;
    assert_eq!(alerts, 1, "refused alerts are not logged");
    let count = |kind: &str| -> rusqlite::Result<(i64, i64)> {
        db.query_row(
            "SELECT COUNT(*), COUNT(status_code) FROM alert_acks WHERE alert_id = ?1 AND kind = ?2",
            rusqlite::params![id as i64, kind],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    };
    assert_eq!(count("delivered")?, (90, 0));
    assert_eq!(count("responding")?, (20, 20));
    assert_eq!(count("unable")?, (5, 0));
    let code: i64 = db.query_row(
        "SELECT status_code FROM alert_acks WHERE terminal = 100 AND kind = 'responding'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(code, 8);
    let total: i64 = db.query_row("SELECT COUNT(*) FROM alert_acks", [], |r| r.get(0))?;
    assert_eq!(total, 115, "refused answers are not logged");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_groups_means_all_call_and_ids_stay_unique_across_restarts() -> anyhow::Result<()>
{
    let directory = TestDirectory::new()
        .dispatcher(1)
        .guards(100..106)
        .group_with(10, "district", [1, 100, 101, 102], &["all-call = true"])
        .group_with(20, "other", [102, 103], &["all-call = true"])
        .group(30, [104, 105]);
    let relay = TestRelay::start(&directory).await?;
    let mut all = relay.connect_all([1].into_iter().chain(100..106)).await;
    let mut guards = all.split_off(1);
    let mut dispatcher = all.pop().expect("dispatcher");

    let first = dispatcher.request(alert("all units", &[])).await?;
    let first = tally(&first).unwrap_or_else(|| panic!("not a tally: {first:?}"));
    assert_eq!(first.targets, 4, "members of the all-call groups");
    for guard in &mut guards[..4] {
        let heard = alert_within(guard, first.alert_id, ptt_tests::PATIENCE)
            .await
            .unwrap_or_else(|| panic!("{} did not get the alert", guard.terminal));
        assert_eq!(heard.target_group_ids, vec![10, 20]);
    }
    for guard in &mut guards[4..] {
        assert!(
            alert_within(guard, first.alert_id, Duration::from_millis(200))
                .await
                .is_none(),
            "{} is in no all-call group",
            guard.terminal
        );
    }
    drop((dispatcher, guards));

    // A restarted relay on the same call log never hands out an old id.
    let data = relay.stop().await?;
    let relay = TestRelay::start_with(&directory, |config| {
        config.data_dir = data.path().to_owned();
    })
    .await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, 1).await?;
    let second = dispatcher.request(alert("again", &[30])).await?;
    let second = tally(&second).unwrap_or_else(|| panic!("not a tally: {second:?}"));
    assert!(
        second.alert_id > first.alert_id,
        "{} after {}",
        second.alert_id,
        first.alert_id
    );
    assert_eq!(second.targets, 2);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_call_of_thousands_is_answered_with_the_targets_that_fit() -> anyhow::Result<()> {
    // 3,000 guards: naming them all would not fit one control message.
    let directory = TestDirectory::new()
        .dispatcher(1)
        .guards(10_000..13_000)
        .group(10, std::iter::once(1).chain(10_000..13_000));
    let relay = TestRelay::start(&directory).await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, 1).await?;
    let answer = dispatcher.request(alert("all units", &[10])).await?;
    let first = tally(&answer).unwrap_or_else(|| panic!("not a tally: {answer:?}"));
    assert_eq!(first.targets, 3_000, "every target counted");
    // The first ones in id order, as many as fit: the answer stays well
    // inside a control message's 64 KiB.
    let named: Vec<u32> = first.entries.iter().map(|e| e.terminal_id).collect();
    assert!(
        named.len() > 1_000 && named.len() < 3_000,
        "{}",
        named.len()
    );
    assert!(
        named
            .iter()
            .copied()
            .eq(10_000..10_000 + named.len() as u32)
    );
    let size = ptt_proto::prost::Message::encoded_len(&first);
    assert!(size < 48 * 1024, "a {size}-byte tally");
    relay.stop().await?;
    Ok(())
}
