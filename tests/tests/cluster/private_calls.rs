//! Private calls in a cluster: a call between two terminals of one relay
//! stays on that relay (its temporary group's ids are every relay's), its
//! voice never on NATS; a call to a terminal of another relay rings there,
//! is heard both ways and ends from either side, and ends for the caller
//! when the callee's relay is gone.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_calllog::{CallLogReader, PrivateCallOutcome};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_relay_core::private_call::CROSS_RELAY_CALL_GROUP_BASE;
use ptt_tests::client::{acked, granted};
use ptt_tests::nats::NatsServer;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

use crate::processes::start_relays;
use crate::{in_process, presence};

/// `caller` asks to call `callee`: the call as its relay answers.
async fn place(caller: &mut Client, callee: u32) -> anyhow::Result<pb::PrivateCallSetup> {
    let answer = caller
        .request(Request::PrivateCallSetup(pb::PrivateCallSetup {
            callee_terminal_id: callee,
            ..Default::default()
        }))
        .await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("setup not answered with the call: {answer:?}");
    };
    Ok(setup)
}

/// The call ringing `callee` (its `PrivateCallSetup`): its id.
async fn rung(callee: &mut Client) -> anyhow::Result<u64> {
    callee
        .expect_body(|b| match b {
            Body::PrivateCallSetup(s) => Some(s.call_id),
            _ => None,
        })
        .await
}

/// `callee` accepts the call ringing it; its id.
async fn answer(callee: &mut Client) -> anyhow::Result<u64> {
    let call_id = rung(callee).await?;
    let accepted = callee
        .request(Request::PrivateCallAccept(pb::PrivateCallAccept {
            call_id,
            group_id: 0,
        }))
        .await?;
    ensure!(acked(&accepted), "{accepted:?}");
    Ok(call_id)
}

/// `caller` calls `callee`, which accepts; returns the call's id and group
/// once both joined it and the caller heard the answer.
async fn call(caller: &mut Client, callee: &mut Client) -> anyhow::Result<(u64, u32)> {
    let setup = place(caller, callee.terminal).await?;
    answer(callee).await?;
    for client in [&mut *caller, &mut *callee] {
        client
            .expect_body(|b| match b {
                Body::JoinOk(j) if j.group.as_ref()?.group_id == setup.group_id => Some(()),
                _ => None,
            })
            .await?;
    }
    caller
        .expect_body(|b| match b {
            Body::PrivateCallAccept(a) if a.call_id == setup.call_id => Some(()),
            _ => None,
        })
        .await?;
    Ok((setup.call_id, setup.group_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_call_on_one_relay_never_goes_to_the_others() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=103).group(10, 100..=103);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let mut callee = Client::connect(a.addr, &a.cert, 101).await?;
    // A call on B at the same time takes B's first slot: the same group id.
    let mut other_caller = Client::connect(b.addr, &b.cert, 102).await?;
    let mut other_callee = Client::connect(b.addr, &b.cert, 103).await?;
    let (_, group) = call(&mut caller, &mut callee).await?;
    let (_, other_group) = call(&mut other_caller, &mut other_callee).await?;
    ensure!(group == other_group, "{group} and {other_group}");

    let burst = granted(&caller.press(group).await?).context("the caller's press")?;
    let granted_on_b = other_caller.press(other_group).await?;
    ensure!(
        granted(&granted_on_b).is_some(),
        "B's call shares no floor with A's: {granted_on_b:?}"
    );
    let heard = speak(&caller, burst, &callee, group, 10).await?;
    ensure!(heard == 10, "the callee heard {heard} of 10 frames");
    ensure!(
        other_callee
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none(),
        "B's call heard A's"
    );
    ensure!(
        a.metrics.cluster_voice_out.get() == 0,
        "A published {} frames of a private call",
        a.metrics.cluster_voice_out.get()
    );
    drop((caller, callee, other_caller, other_callee));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// Why `caller`'s call to `callee` is refused (its `PrivateCallReject`).
async fn refusal(caller: &mut Client, callee: u32) -> anyhow::Result<i32> {
    place(caller, callee).await?;
    caller
        .expect_body(|b| match b {
            Body::PrivateCallReject(r) => Some(r.reason),
            _ => None,
        })
        .await
}

/// `talker` talks `frames` frames in `group`; how many `listener` heard.
async fn talk(
    talker: &mut Client,
    listener: &Client,
    group: u32,
    frames: u16,
) -> anyhow::Result<usize> {
    let burst = granted(&talker.press(group).await?).context("the press")?;
    let heard = speak(talker, burst, listener, group, frames).await?;
    ensure!(
        acked(&talker.release(group).await?),
        "the release was refused"
    );
    Ok(heard)
}

/// `talker`, granted `burst` of `group`, sends `frames` frames; how many
/// `listener` heard.
async fn speak(
    talker: &Client,
    burst: u32,
    listener: &Client,
    group: u32,
    frames: u16,
) -> anyhow::Result<usize> {
    for sequence in 0..frames {
        talker.send_datagram(opus::datagram(group, burst, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut heard = 0;
    while listener
        .recv_voice(Duration::from_millis(500))
        .await
        .is_some()
    {
        heard += 1;
    }
    Ok(heard)
}

/// `party` hangs up call `call_id`.
async fn hang_up(party: &mut Client, call_id: u64) -> anyhow::Result<()> {
    let hung_up = party
        .request(Request::PrivateCallEnd(pb::PrivateCallEnd {
            call_id,
            reason: pb::PrivateCallEndReason::Hangup.into(),
        }))
        .await?;
    ensure!(acked(&hung_up), "{hung_up:?}");
    Ok(())
}

/// Waits until `relay` knows `terminal` is logged in to relay `on` (it
/// rings a callee there only then).
async fn announced(relay: &TestRelay, terminal: u32, on: &str) -> anyhow::Result<()> {
    presence::until(
        relay,
        "/api/v1/terminals",
        Duration::from_secs(5),
        |answer| Ok(presence::entry(answer, "terminals", terminal)?["relay"] == on),
    )
    .await?;
    Ok(())
}

/// The `PrivateCallEnd` reason `client` is told for `call_id`.
async fn ended(client: &mut Client, call_id: u64) -> anyhow::Result<i32> {
    client
        .expect_body(|b| match b {
            Body::PrivateCallEnd(end) if end.call_id == call_id => Some(end.reason),
            _ => None,
        })
        .await
}

/// A guard on relay A calls a guard logged in to relay B: B rings it, the
/// answer joins both to a group of the cluster, each hears the other, a
/// hang-up on B ends the call for the caller on A, and the call is in both
/// relays' call logs once. A callee that declines or is in another call
/// is refused as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_terminal_of_another_relay_rings_there_and_is_heard_both_ways()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=103).group(10, 100..=103);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let mut callee = Client::connect(b.addr, &b.cert, 101).await?;
    let mut neighbour = Client::connect(b.addr, &b.cert, 102).await?;
    announced(a, 101, "relay-b").await?;

    let (call_id, group) = call(&mut caller, &mut callee).await?;
    ensure!(group >= CROSS_RELAY_CALL_GROUP_BASE, "group {group}");
    let heard = talk(&mut caller, &callee, group, 10).await?;
    ensure!(heard == 10, "the callee on B heard {heard} of 10 frames");
    let heard = talk(&mut callee, &caller, group, 10).await?;
    ensure!(heard == 10, "the caller on A heard {heard} of 10 frames");
    ensure!(
        neighbour
            .recv_voice(Duration::from_millis(100))
            .await
            .is_none(),
        "a terminal of no call heard it"
    );
    hang_up(&mut callee, call_id).await?;
    let reason = ended(&mut caller, call_id).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallEndReason::Hangup),
        "the caller was told {reason}"
    );
    for relay in [a, b] {
        presence::until(
            relay,
            "/api/v1/private-calls",
            Duration::from_secs(5),
            |answer| {
                let calls = answer["private_calls"]
                    .as_array()
                    .context("no private_calls")?;
                let this: Vec<_> = calls.iter().filter(|c| c["call_id"] == call_id).collect();
                ensure!(this.len() <= 1, "logged twice: {answer}");
                Ok(this.first().is_some_and(|c| {
                    c["outcome"] == "completed"
                        && c["group"] == group
                        && !c["answered_at_ms"].is_null()
                }))
            },
        )
        .await?;
    }

    // Declined on B: the caller on A hears so.
    let reason = declined_by(&mut caller, &mut callee).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallRejectReason::Declined),
        "the caller was told {reason}"
    );
    // In a call on B with its neighbour: busy.
    call(&mut neighbour, &mut callee).await?;
    let reason = refusal(&mut caller, 101).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallRejectReason::Busy),
        "the caller was told {reason}"
    );
    // Logged in nowhere: offline.
    let reason = refusal(&mut caller, 103).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallRejectReason::Offline),
        "{reason}"
    );
    drop((caller, callee, neighbour));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// `caller` calls `callee`, which declines: what the caller is told.
async fn declined_by(caller: &mut Client, callee: &mut Client) -> anyhow::Result<i32> {
    place(caller, callee.terminal).await?;
    let call_id = rung(callee).await?;
    let declined = callee
        .request(Request::PrivateCallReject(pb::PrivateCallReject {
            call_id,
            reason: pb::PrivateCallRejectReason::Declined.into(),
        }))
        .await?;
    ensure!(acked(&declined), "{declined:?}");
    caller
        .expect_body(|b| match b {
            Body::PrivateCallReject(r) if r.call_id == call_id => Some(r.reason),
            _ => None,
        })
        .await
}

/// `caller` calls `callee` (of another relay) once its relay has announced
/// it (before, the callee is offline to the caller's relay); the callee
/// accepts. Returns the call's id.
async fn call_once_announced(caller: &mut Client, callee: &mut Client) -> anyhow::Result<u64> {
    for _ in 0..50 {
        let setup = place(caller, callee.terminal).await?;
        let refused = caller
            .expect_within(Duration::from_millis(300), |m| {
                matches!(&m.body, Some(Body::PrivateCallReject(r)) if r.call_id == setup.call_id)
            })
            .await?;
        if refused.is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        return answer(callee).await;
    }
    anyhow::bail!("the callee was never announced to the caller's relay")
}

/// The callee's relay killed with SIGKILL mid-call (nothing tells the
/// caller's relay): once that relay is taken for gone (3 s silent), the
/// caller is told its peer is lost and the call is logged as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ends_for_the_caller_when_the_callees_relay_dies() -> anyhow::Result<()> {
    one_relay_dies_mid_call(Side::Callee).await
}

/// The caller's relay killed mid-call: the callee is told its peer is lost
/// (and the call's group is left, free for the caller's relay's next run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_ends_for_the_callee_when_the_callers_relay_dies() -> anyhow::Result<()> {
    one_relay_dies_mid_call(Side::Caller).await
}

/// A party of a call between relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Callee,
}

/// A calls B; `dies`'s relay is killed with SIGKILL: the other party is
/// told its peer is lost within 5 s, and the caller's relay, if alive, logs
/// the call as disconnected.
async fn one_relay_dies_mid_call(dies: Side) -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=101).group(10, 100..=101);
    let mut relays = start_relays(&nats, &directory, 2).await?;
    let (a, b) = (&relays.processes[0], &relays.processes[1]);
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let mut callee = Client::connect(b.addr, &b.cert, 101).await?;
    let call_id = call_once_announced(&mut caller, &mut callee).await?;
    caller
        .expect_body(|b| matches!(b, Body::PrivateCallAccept(_)).then_some(()))
        .await?;

    let (dead, mut survivor) = match dies {
        Side::Caller => (0, callee),
        Side::Callee => (1, caller),
    };
    relays.processes[dead].kill()?;
    let killed = Instant::now();
    let reason = ended(&mut survivor, call_id).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallEndReason::PeerDisconnected),
        "the surviving party was told {reason}"
    );
    let after = killed.elapsed();
    ensure!(
        after < Duration::from_secs(5),
        "told {after:?} after the kill"
    );
    if dies == Side::Caller {
        return Ok(());
    }
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = CallLogReader::open(&relays.calllog(0))?.private_calls(0, i64::MAX, 10)?;
        if let Some(row) = rows.iter().find(|row| row.record.call_id == call_id) {
            ensure!(
                row.record.outcome == PrivateCallOutcome::Disconnected,
                "{:?}",
                row.record
            );
            return Ok(());
        }
        ensure!(
            Instant::now() < until,
            "the call was never logged: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The caller's relay restarted at once after a SIGKILL (before the other
/// relay could take it for gone): the callee's relay hears that it no
/// longer has the call and ends it for the callee, and the restarted relay
/// hands out the same group again to a new call, heard only by its parties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_callers_relay_leaves_no_half_call_behind() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=102).group(10, 100..=102);
    let mut relays = start_relays(&nats, &directory, 2).await?;
    let b = &relays.processes[1];
    let mut callee = Client::connect(b.addr, &b.cert, 101).await?;
    let mut bystander = Client::connect(b.addr, &b.cert, 102).await?;
    let a = &relays.processes[0];
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let first = call_once_announced(&mut caller, &mut callee).await?;
    drop(caller);

    let restarting = Instant::now();
    relays.restart(0).await?;
    let back_after = restarting.elapsed();
    let reason = ended(&mut callee, first).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallEndReason::PeerDisconnected),
        "the callee was told {reason}"
    );
    let told_after = restarting.elapsed();
    ensure!(
        told_after < Duration::from_secs(5),
        "told {told_after:?} after the restart (back after {back_after:?})"
    );

    // A new call from the restarted relay to the bystander takes the same
    // group; the first call's callee hears none of it.
    let a = &relays.processes[0];
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let second = call_once_announced(&mut caller, &mut bystander).await?;
    let group = caller
        .expect_body(|b| match b {
            Body::PrivateCallAccept(accept) if accept.call_id == second => Some(accept.group_id),
            _ => None,
        })
        .await?;
    ensure!(second != first, "call id {second} again");
    let heard = talk(&mut caller, &bystander, group, 5).await?;
    ensure!(heard == 5, "the new callee heard {heard} of 5 frames");
    ensure!(
        callee
            .recv_voice(Duration::from_millis(100))
            .await
            .is_none(),
        "the first call's callee heard the new call"
    );
    Ok(())
}

/// A call to another relay's terminal that nobody answers is given up by the
/// caller's relay at its own answer timeout (the callee's relay's longer
/// one does not matter): the caller hears NO_ANSWER, the callee stops
/// ringing. One the caller withdraws while it rings stops ringing too. The
/// caller's relay logs each once: no-answer, cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_another_relay_nobody_answers_or_the_caller_withdraws() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=101).group(10, 100..=101);
    let a = in_process::relay(&nats, &directory, "relay-a", |config| {
        config.private_call_answer_timeout = Duration::from_millis(600);
    })
    .await?;
    let b = in_process::relay(&nats, &directory, "relay-b", |_| {}).await?;
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let mut callee = Client::connect(b.addr, &b.cert, 101).await?;
    announced(&a, 101, "relay-b").await?;

    let unanswered = place(&mut caller, 101).await?.call_id;
    let started = Instant::now();
    rung(&mut callee).await?;
    let reason = caller
        .expect_body(|b| match b {
            Body::PrivateCallReject(r) if r.call_id == unanswered => Some(r.reason),
            _ => None,
        })
        .await?;
    ensure!(
        reason == i32::from(pb::PrivateCallRejectReason::NoAnswer),
        "the caller was told {reason}"
    );
    let after = started.elapsed();
    ensure!(after < Duration::from_secs(3), "given up after {after:?}");
    let reason = ended(&mut callee, unanswered).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallEndReason::Unspecified),
        "the callee was told {reason}"
    );

    let withdrawn = place(&mut caller, 101).await?.call_id;
    rung(&mut callee).await?;
    hang_up(&mut caller, withdrawn).await?;
    let reason = ended(&mut callee, withdrawn).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallEndReason::Hangup),
        "the callee was told {reason}"
    );

    let outcomes = [(unanswered, "no-answer"), (withdrawn, "cancelled")];
    presence::until(
        &a,
        "/api/v1/private-calls",
        Duration::from_secs(5),
        |answer| {
            let calls = answer["private_calls"]
                .as_array()
                .context("no private_calls")?;
            ensure!(calls.len() <= 2, "logged more than twice: {answer}");
            Ok(outcomes.iter().all(|(id, outcome)| {
                calls
                    .iter()
                    .any(|c| c["call_id"] == *id && c["outcome"] == *outcome)
            }))
        },
    )
    .await?;
    drop((caller, callee));
    for relay in [a, b] {
        relay.stop().await?;
    }
    Ok(())
}
