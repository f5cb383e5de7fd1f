//! The control room's calls through the real relay: emergency pre-emption
//! with control-room notification and clearing, and the all-call.

use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

fn emergency_state(body: &Body) -> Option<pb::EmergencyState> {
    match body {
        Body::EmergencyState(state) => Some(state.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_preempts_alerts_the_control_room_and_is_cleared_by_a_dispatcher()
-> anyhow::Result<()> {
    let directory = TestDirectory::new()
        .dispatcher(1)
        .guards(100..103)
        .group_with(1, "control-room", [1], &[])
        .group(10, [1, 100, 101, 102]);
    let relay = TestRelay::start(&directory).await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, 1).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let mut caller = Client::connect(relay.addr, &relay.cert, 101).await?;
    let mut other = Client::connect(relay.addr, &relay.cert, 102).await?;

    granted(&talker.press(10).await?).expect("routine talk granted");
    let answer = caller
        .press_with(10, pb::Priority::Normal, pb::FloorKind::Emergency)
        .await?;
    let Body::FloorGranted(grant) = answer else {
        anyhow::bail!("emergency not granted at once: {answer:?}")
    };
    assert_eq!(grant.priority, i32::from(pb::Priority::Emergency));
    let revoked = talker
        .expect_body(|b| match b {
            Body::FloorRevoked(r) => Some(r.reason),
            _ => None,
        })
        .await?;
    assert_eq!(revoked, i32::from(pb::FloorRevokeReason::Preempted));

    // Members of the group and the control room see the emergency.
    for client in [&mut other, &mut dispatcher] {
        let state = client.expect_body(emergency_state).await?;
        assert!(state.active);
        assert_eq!((state.group_id, state.declared_by), (10, 101));
    }
    // The caller's voice reaches the others.
    caller.send_datagram(opus::datagram(10, grant.burst_id, 0, 0))?;
    let heard = other
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("voice");
    assert_eq!(heard.header.talker_id, 101);

    // Only a dispatcher may clear it.
    let refused = other
        .request(Request::EmergencyClear(pb::EmergencyClear { group_id: 10 }))
        .await?;
    assert!(
        matches!(refused, Body::Error(ref e) if e.reason == i32::from(pb::ErrorReason::Forbidden))
    );
    let cleared = dispatcher
        .request(Request::EmergencyClear(pb::EmergencyClear { group_id: 10 }))
        .await?;
    let state = emergency_state(&cleared).expect("answered with the state");
    assert!(!state.active);
    assert_eq!(state.cleared_by, 1);
    let seen = other
        .expect(|m| {
            m.body
                .as_ref()
                .and_then(emergency_state)
                .is_some_and(|s| !s.active)
        })
        .await?;
    assert_eq!(seen.request_id, 0);

    // The emergency button without a call: answered with the group's state.
    let declared = other
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: 10,
            text: "intruder at gate 2".into(),
        }))
        .await?;
    let state = emergency_state(&declared).expect("answered with the state");
    assert!(state.active && state.declared_by == 102, "{state:?}");
    assert_eq!(state.text, "intruder at gate 2", "the declarer's words");
    let seen = dispatcher
        .expect_body(|b| emergency_state(b).filter(|s| s.active && s.declared_by == 102))
        .await?;
    assert_eq!(
        seen.text, "intruder at gate 2",
        "the control room reads them"
    );

    let data = relay.stop().await?;
    let db = rusqlite::Connection::open(data.path().join("pttd.sqlite"))?;
    let (declared, cleared): (i64, i64) = db.query_row(
        "SELECT (SELECT COUNT(*) FROM emergencies WHERE group_id = 10 AND terminal = 101),
                (SELECT COUNT(*) FROM emergency_clears WHERE group_id = 10)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    assert_eq!((declared, cleared), (1, 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_call_reaches_every_all_call_group_once_and_silences_them() -> anyhow::Result<()> {
    let all_call = ["all-call = true"];
    let directory = TestDirectory::new()
        .dispatcher(1)
        .guards(100..104)
        .group_with(10, "district", [1, 100], &all_call)
        .group_with(11, "other", [1, 100, 101], &all_call)
        .group_with(12, "other", [1, 102], &all_call)
        .group(13, [1, 103]);
    let relay = TestRelay::start(&directory).await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, 1).await?;
    let in_two = Client::connect(relay.addr, &relay.cert, 100).await?;
    let mut talking = Client::connect(relay.addr, &relay.cert, 101).await?;
    let mut third = Client::connect(relay.addr, &relay.cert, 102).await?;
    let outside = Client::connect(relay.addr, &relay.cert, 103).await?;

    granted(&talking.press(11).await?).expect("routine talk in group 11");
    let answer = dispatcher
        .press_with(0, pb::Priority::Dispatcher, pb::FloorKind::Broadcast)
        .await?;
    assert!(
        matches!(answer, Body::FloorGranted(ref g) if g.group_id == 0),
        "{answer:?}"
    );
    // Every all-call group is granted to the dispatcher, pre-empting routine talk.
    for group in [10, 11, 12] {
        dispatcher
            .expect_body(|b| match b {
                Body::FloorGranted(g) if g.group_id == group => Some(()),
                _ => None,
            })
            .await?;
    }
    let revoked = talking
        .expect_body(|b| match b {
            Body::FloorRevoked(r) => Some(r.reason),
            _ => None,
        })
        .await?;
    assert_eq!(revoked, i32::from(pb::FloorRevokeReason::Preempted));
    let taken = third
        .expect_body(|b| match b {
            Body::FloorTaken(t) if t.group_id == 12 => Some(t.kind),
            _ => None,
        })
        .await?;
    assert_eq!(taken, i32::from(pb::FloorKind::Broadcast));

    // Receivers cannot talk during it.
    let denied = third.press(12).await?;
    assert!(
        matches!(denied, Body::FloorDenied(ref d) if d.reason == i32::from(pb::FloorDenyReason::BroadcastInProgress)),
        "{denied:?}"
    );

    // One frame in, each listener hears it once, the outsider not at all.
    for seq in 0..5 {
        dispatcher.send_datagram(opus::datagram(0, 0, seq, 0))?;
    }
    // Each frame is rewritten to a group of the listener's that the
    // all-call covers (voice.md §3.1), with that group's burst, never 0.
    let covered: [(&Client, &[u32]); 3] =
        [(&in_two, &[10, 11]), (&talking, &[11]), (&third, &[12])];
    for (listener, groups) in covered {
        let mut heard = Vec::new();
        while let Some(frame) = listener.recv_voice(Duration::from_millis(800)).await {
            assert_eq!(frame.header.talker_id, 1);
            assert!(
                groups.contains(&frame.header.group_id),
                "terminal {} got group {}",
                listener.terminal,
                frame.header.group_id
            );
            assert_ne!(frame.header.burst_id, 0, "the group's burst");
            heard.push(frame.header.sequence);
        }
        assert_eq!(heard, vec![0, 1, 2, 3, 4], "terminal {}", listener.terminal);
    }
    assert!(
        outside
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none()
    );

    // Ending the all-call frees every group.
    assert!(matches!(dispatcher.release(0).await?, Body::Ack(_)));
    third
        .expect_body(|b| match b {
            Body::FloorIdle(i) if i.group_id == 12 => Some(()),
            _ => None,
        })
        .await?;
    granted(&third.press(12).await?).expect("free again after the all-call");
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reaches_the_control_room_not_the_other_members() -> anyhow::Result<()> {
    let directory = TestDirectory::new()
        .dispatcher(1)
        .guards(100..102)
        .group_with(1, "control-room", [1], &[])
        .group(10, [1, 100, 101]);
    let relay = TestRelay::start(&directory).await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, 1).await?;
    let mut member = Client::connect(relay.addr, &relay.cert, 100).await?;
    let _newcomer = Client::connect(relay.addr, &relay.cert, 101).await?;
    let online = |body: &Body| match body {
        Body::Presence(p) if p.terminal_id == 101 => Some(p.state),
        _ => None,
    };
    let state = dispatcher.expect_body(online).await?;
    assert_eq!(state, i32::from(pb::PresenceState::Online));
    // By the time the control room heard, so would have the member.
    let told = member
        .expect_within(Duration::from_millis(300), |m| {
            m.body.as_ref().and_then(online).is_some()
        })
        .await?;
    assert!(told.is_none(), "a member was sent presence: {told:?}");
    relay.stop().await?;
    Ok(())
}
