//! Private calls and status messages through the real relay: setup, answer, floor control
//! and voice in the call's temporary group, hang-up; refusals (not allowed, offline, busy,
//! declined); the peer's disconnect; a call nobody answers within `private-call-answer-timeout`;
//! status codes checked against the directory's table.

use std::time::{Duration, Instant};

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_relay_core::private_call::PRIVATE_CALL_GROUP_BASE;
use ptt_tests::client::granted;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay, opus};

/// Guards 100–103 share group 10; guard 110 shares nothing with them; dispatcher 1.
fn directory() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(1)
        .guards(100..104)
        .guards([110])
        .group_with(1, "control-room", [1], &[])
        .group(10, [100, 101, 102, 103])
        .group(11, [110])
        .table("[[status]]\ncode = 1\nlabel = \"On scene\"\n")
        .table("[[status]]\ncode = 3\nlabel = \"Need backup\"\n")
}

fn call(callee: u32) -> Request {
    Request::PrivateCallSetup(pb::PrivateCallSetup {
        callee_terminal_id: callee,
        ..Default::default()
    })
}

fn error_reason(body: &Body) -> Option<pb::ErrorReason> {
    match body {
        Body::Error(e) => pb::ErrorReason::try_from(e.reason).ok(),
        _ => None,
    }
}

fn rejected(body: &Body) -> Option<(u64, pb::PrivateCallRejectReason)> {
    match body {
        Body::PrivateCallReject(r) => Some((
            r.call_id,
            pb::PrivateCallRejectReason::try_from(r.reason).unwrap_or_default(),
        )),
        _ => None,
    }
}

fn ended(body: &Body) -> Option<(u64, pb::PrivateCallEndReason)> {
    match body {
        Body::PrivateCallEnd(e) => Some((
            e.call_id,
            pb::PrivateCallEndReason::try_from(e.reason).unwrap_or_default(),
        )),
        _ => None,
    }
}

fn incoming(body: &Body) -> Option<pb::PrivateCallSetup> {
    match body {
        Body::PrivateCallSetup(s) => Some(s.clone()),
        _ => None,
    }
}

/// `caller` calls `callee`, which accepts; returns (call id, group id) once both joined.
async fn connect(caller: &mut Client, callee: &mut Client) -> anyhow::Result<(u64, u32)> {
    let answer = caller.request(call(callee.terminal)).await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("setup not answered with the call: {answer:?}");
    };
    assert!(setup.group_id >= PRIVATE_CALL_GROUP_BASE, "{setup:?}");
    let ringing = callee.expect_body(incoming).await?;
    assert_eq!(
        (
            ringing.call_id,
            ringing.caller_terminal_id,
            ringing.group_id
        ),
        (setup.call_id, caller.terminal, setup.group_id)
    );
    let accepted = callee
        .request(Request::PrivateCallAccept(pb::PrivateCallAccept {
            call_id: setup.call_id,
            group_id: 0,
        }))
        .await?;
    assert!(matches!(accepted, Body::Ack(_)), "{accepted:?}");
    let told = caller
        .expect_body(|b| match b {
            Body::PrivateCallAccept(a) => Some(*a),
            _ => None,
        })
        .await?;
    assert_eq!(
        (told.call_id, told.group_id),
        (setup.call_id, setup.group_id)
    );
    for client in [&mut *caller, &mut *callee] {
        let joined = client
            .expect_body(|b| match b {
                Body::JoinOk(j) => j.group.clone(),
                _ => None,
            })
            .await?;
        assert_eq!(joined.group_id, setup.group_id);
        assert!(joined.dynamic);
    }
    Ok((setup.call_id, setup.group_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_call_connects_two_terminals_with_floor_control() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut clients = relay.connect_all([1, 100, 101, 102, 110]).await;
    let stranger = clients.pop().expect("110");
    let mut bystander = clients.pop().expect("102");
    let mut callee = clients.pop().expect("101");
    let mut caller = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");

    // Who may call whom.
    let refused = caller.request(call(110)).await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Forbidden));
    let refused = caller.request(call(999)).await?;
    assert_eq!(
        error_reason(&refused),
        Some(pb::ErrorReason::UnknownTerminal)
    );
    let refused = caller.request(call(100)).await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Malformed));

    let (call_id, group) = connect(&mut caller, &mut callee).await?;

    // Floor control as in any group: one talks, the other is queued, then speaks.
    let burst = granted(&caller.press(group).await?).expect("caller talks");
    let queued = callee.press(group).await?;
    assert!(matches!(queued, Body::FloorQueued(_)), "{queued:?}");
    caller.send_datagram(opus::datagram(group, burst, 0, 0))?;
    let heard = callee
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("callee hears the caller");
    assert_eq!(
        (heard.header.group_id, heard.header.talker_id),
        (group, 100)
    );
    caller.release(group).await?;
    let burst = callee
        .expect_body(|b| match b {
            Body::FloorGranted(g) if g.group_id == group => Some(g.burst_id),
            _ => None,
        })
        .await?;
    callee.send_datagram(opus::datagram(group, burst, 0, 0))?;
    let heard = caller
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("caller hears the answer");
    assert_eq!(heard.header.talker_id, 101);
    // Nobody else hears a private call.
    for other in [&bystander, &dispatcher, &stranger] {
        assert!(other.recv_voice(Duration::from_millis(200)).await.is_none());
    }
    callee.release(group).await?;
    // An outsider cannot talk in it.
    let denied = bystander.press(group).await?;
    assert!(matches!(denied, Body::FloorDenied(_)), "{denied:?}");

    // Busy: the dispatcher calls the callee while it is in the call.
    let answer = dispatcher.request(call(101)).await?;
    let Body::PrivateCallSetup(busy) = answer else {
        anyhow::bail!("{answer:?}");
    };
    assert_eq!(
        dispatcher.expect_body(rejected).await?,
        (busy.call_id, pb::PrivateCallRejectReason::Busy)
    );

    // Hang up: the other side is told; neither may talk in the group any more.
    let hung = caller
        .request(Request::PrivateCallEnd(pb::PrivateCallEnd {
            call_id,
            reason: pb::PrivateCallEndReason::Hangup.into(),
        }))
        .await?;
    assert!(matches!(hung, Body::Ack(_)), "{hung:?}");
    assert_eq!(
        callee.expect_body(ended).await?,
        (call_id, pb::PrivateCallEndReason::Hangup)
    );
    let denied = callee.press(group).await?;
    assert!(matches!(denied, Body::FloorDenied(_)), "{denied:?}");

    // Declined.
    let answer = caller.request(call(102)).await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("{answer:?}");
    };
    bystander.expect_body(incoming).await?;
    let declined = bystander
        .request(Request::PrivateCallReject(pb::PrivateCallReject {
            call_id: setup.call_id,
            reason: pb::PrivateCallRejectReason::Declined.into(),
        }))
        .await?;
    assert!(matches!(declined, Body::Ack(_)));
    assert_eq!(
        caller.expect_body(rejected).await?,
        (setup.call_id, pb::PrivateCallRejectReason::Declined)
    );

    // Offline: 103 never logged in.
    let answer = caller.request(call(103)).await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("{answer:?}");
    };
    assert_eq!(
        caller.expect_body(rejected).await?,
        (setup.call_id, pb::PrivateCallRejectReason::Offline)
    );

    // The peer's connection is lost mid-call, while it holds the floor.
    let (call_id, group) = connect(&mut caller, &mut callee).await?;
    granted(&callee.press(group).await?).expect("callee talks");
    callee.close().await;
    assert_eq!(
        caller.expect_body(ended).await?,
        (call_id, pb::PrivateCallEndReason::PeerDisconnected)
    );
    // The group went back to the pool with nobody left in it: the next call
    // gets it (the pool is last-in first-out) with its floor free at once.
    let (_, next) = connect(&mut caller, &mut bystander).await?;
    assert_eq!(next, group, "the freed group is reused");
    let answer = caller.press(next).await?;
    assert!(
        granted(&answer).is_some(),
        "no dead holder left: {answer:?}"
    );
    relay.stop().await?;
    Ok(())
}

/// A call nobody answers ends for both parties once `private-call-answer-timeout` has
/// passed: the caller is told NO_ANSWER (ptt.proto's `PrivateCallRejectReason`), the callee
/// stops ringing (`PrivateCallEnd`; the protocol has no end reason for it, so UNSPECIFIED),
/// the call log's row says `no-answer`, and the slot is free for the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_ends_for_both_after_the_answer_timeout() -> anyhow::Result<()> {
    let ringing_for = Duration::from_secs(1);
    let relay = TestRelay::start_with(&directory(), |config| {
        config.private_call_answer_timeout = ringing_for;
    })
    .await?;
    let mut clients = relay.connect_all([100, 101]).await;
    let mut callee = clients.pop().expect("101");
    let mut caller = clients.pop().expect("100");

    let placed = Instant::now();
    let answer = caller.request(call(101)).await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("setup not answered with the call: {answer:?}");
    };
    let ringing = callee.expect_body(incoming).await?;
    assert_eq!(ringing.call_id, setup.call_id);

    // Nobody answers. Both hear within the timeout plus a margin, not before it.
    let told = caller.expect_body(rejected).await?;
    let caller_told_after = placed.elapsed();
    assert_eq!(told, (setup.call_id, pb::PrivateCallRejectReason::NoAnswer));
    let stopped = callee.expect_body(ended).await?;
    assert_eq!(
        stopped,
        (setup.call_id, pb::PrivateCallEndReason::Unspecified)
    );
    assert!(
        caller_told_after >= ringing_for && caller_told_after < ringing_for + PATIENCE / 2,
        "told after {caller_told_after:?}"
    );
    // Answering now is too late: the call is gone.
    let late = callee
        .request(Request::PrivateCallAccept(pb::PrivateCallAccept {
            call_id: setup.call_id,
            group_id: 0,
        }))
        .await?;
    assert_eq!(
        error_reason(&late),
        Some(pb::ErrorReason::UnknownCall),
        "{late:?}"
    );
    // Neither is in a call any more: the caller may call again and it rings.
    let again = caller.request(call(101)).await?;
    let Body::PrivateCallSetup(again) = again else {
        anyhow::bail!("second call refused: {again:?}");
    };
    assert_ne!(again.call_id, setup.call_id);
    assert_eq!(callee.expect_body(incoming).await?.call_id, again.call_id);

    let data = relay.stop().await?;
    let db = rusqlite::Connection::open(data.path().join("pttd.sqlite"))?;
    let (caller_id, callee_id, outcome, answered, rang_ms): (i64, i64, String, Option<i64>, i64) =
        db.query_row(
            "SELECT caller, callee, outcome, answered_at_ms, ended_at_ms - started_at_ms
             FROM private_calls WHERE call_id = ?1",
            [i64::try_from(setup.call_id)?],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )?;
    assert_eq!(
        (caller_id, callee_id, outcome.as_str(), answered),
        (100, 101, "no-answer", None)
    );
    let rang = u128::try_from(rang_ms)?;
    assert!(
        rang >= ringing_for.as_millis() - 50 && rang < caller_told_after.as_millis() + 50,
        "rang {rang} ms"
    );
    Ok(())
}

/// A terminal's login joins its groups after `HelloOk` (each group's task takes the
/// join in turn), so a message to the control room sent right after the dispatcher's
/// login may find it not yet listening: waits until the dispatcher hears a status
/// message of its own to the control room, then forgets it.
async fn until_in_control_room(dispatcher: &mut Client) -> anyhow::Result<()> {
    for _ in 0..30 {
        let check = Request::StatusMessage(pb::StatusMessage {
            code: 0,
            text: "in the control room?".to_owned(),
            target: Some(pb::status_message::Target::Dispatchers(true)),
            ..Default::default()
        });
        dispatcher.request(check).await?;
        let heard = dispatcher
            .expect_within(Duration::from_millis(300), |m| {
                matches!(m.body, Some(Body::StatusMessage(_)))
            })
            .await?;
        if heard.is_some() {
            dispatcher.clear();
            return Ok(());
        }
    }
    anyhow::bail!("the dispatcher never joined the control room")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_messages_round_trip_with_their_label() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut clients = relay.connect_all([1, 100, 101]).await;
    let mut peer = clients.pop().expect("101");
    let mut sender = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");

    // The code table reaches every terminal at login.
    let hello = sender.hello.clone();
    let table: Vec<(u32, &str)> = hello
        .status_codes
        .iter()
        .map(|s| (s.code, s.label.as_str()))
        .collect();
    assert_eq!(table, [(1, "On scene"), (3, "Need backup")]);

    let status = |code: u32, text: &str, target| {
        Request::StatusMessage(pb::StatusMessage {
            code,
            text: text.to_owned(),
            target: Some(target),
            ..Default::default()
        })
    };
    use pb::status_message::Target;
    let pick = |b: &Body| match b {
        Body::StatusMessage(s) => Some(s.clone()),
        _ => None,
    };

    // To one terminal: the label fills the empty text; the sender is set by the relay.
    let answer = sender
        .request(status(1, "", Target::TerminalId(101)))
        .await?;
    assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
    let got = peer.expect_body(pick).await?;
    assert_eq!(
        (got.from_terminal_id, got.code, got.text.as_str()),
        (100, 1, "On scene")
    );

    // To the control room, with text of its own (once the dispatcher hears it).
    until_in_control_room(&mut dispatcher).await?;
    sender
        .request(status(
            3,
            "two men at the east gate",
            Target::Dispatchers(true),
        ))
        .await?;
    let got = dispatcher.expect_body(pick).await?;
    assert_eq!(
        (got.code, got.text.as_str()),
        (3, "two men at the east gate")
    );

    // To a group the sender is in.
    sender
        .request(status(0, "radio check", Target::GroupId(10)))
        .await?;
    let got = peer.expect_body(pick).await?;
    assert_eq!(got.text, "radio check");

    // Refusals: unknown code, nothing to say, a group not joined, an offline terminal.
    let refused = sender
        .request(status(99, "", Target::Dispatchers(true)))
        .await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Malformed));
    let refused = sender
        .request(status(0, " ", Target::Dispatchers(true)))
        .await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Malformed));
    let refused = sender.request(status(1, "", Target::GroupId(11))).await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::NotMember));
    let refused = sender
        .request(status(1, "", Target::TerminalId(103)))
        .await?;
    assert_eq!(
        error_reason(&refused),
        Some(pb::ErrorReason::UnknownTerminal)
    );
    let refused = sender
        .request(status(1, "", Target::TerminalId(110)))
        .await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Forbidden));
    let long = "x".repeat(1025);
    let refused = sender
        .request(status(0, &long, Target::Dispatchers(true)))
        .await?;
    assert_eq!(error_reason(&refused), Some(pb::ErrorReason::Malformed));
    relay.stop().await?;
    Ok(())
}
