//! Private calls that end without a hang-up, against a real relay on
//! loopback: a peer lost mid-call, a callee back before the relay noticed,
//! and an emergency call pre-empting another.

use crate::common;

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use common::calls::{
    CALLEE, CALLER, SQUAD, THIRD, answer_args, call_args, call_directory_toml, knows,
};
use common::{PATIENCE, Relay, Wire, drain, expect};
use ptt_cli::cli::answer;
use ptt_cli::cli::call::{self, CallArgs};
use ptt_client::{Client, ClientConfig, Event, Events, FloorOutcome, ReconnectPolicy};
use ptt_proto::pb;

/// Client settings that notice a lost relay within about a second and
/// come back quickly, connecting through `wire`.
fn through(relay: &Relay, wire: &Wire, id: u32) -> ClientConfig {
    let mut config = relay.config(id);
    config.server = wire.addr;
    config.connect_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(1);
    config.keep_alive = Duration::from_millis(250);
    config.reconnect = ReconnectPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
        ..ReconnectPolicy::default()
    };
    config
}

/// Cuts `wire` until the client has noticed, then mends it and returns the
/// groups joined after the reconnect.
async fn drop_and_reconnect(wire: &Wire, events: &mut Events) -> anyhow::Result<Vec<u32>> {
    wire.cut();
    reconnect_after_cut(wire, events).await
}

/// With `wire` cut: waits until the client has noticed, then mends it and
/// returns the groups joined after the reconnect.
async fn reconnect_after_cut(wire: &Wire, events: &mut Events) -> anyhow::Result<Vec<u32>> {
    let will_reconnect = expect(events, |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(*will_reconnect),
        _ => None,
    })
    .await?;
    ensure!(will_reconnect, "the client gave up");
    wire.mend();
    expect(events, |e| match e {
        Event::Reconnected { groups, .. } => Some(groups.clone()),
        _ => None,
    })
    .await
}

/// The callee's connection drops mid-call: the caller's client is told
/// PEER_DISCONNECTED (and `ptt call` stops talking and reports it); after
/// reconnecting, neither party is in the call's group again, for the client
/// nor for the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_lost_mid_call_ends_it_and_nobody_rejoins_its_group() -> anyhow::Result<()> {
    let relay = Relay::start_with(&call_directory_toml(), |config| {
        config.idle_timeout = Duration::from_secs(1);
        config.keep_alive = Duration::from_millis(250);
    })
    .await?;
    let (caller_wire, callee_wire) = (Wire::to(relay.addr).await?, Wire::to(relay.addr).await?);
    let caller = Client::connect(through(&relay, &caller_wire, CALLER)).await?;
    let callee = Client::connect(through(&relay, &callee_wire, CALLEE)).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();
    let mut lines = Vec::new();
    // Ten seconds of tone: the call is cut long before it ends.
    let args = call_args(&relay, CALLER, CALLEE, 10.0);
    let callee_side = async {
        let call = expect(&mut callee_events, |e| match e {
            Event::CallIncoming(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        callee.accept_call(call.call_id).await?;
        expect(&mut callee_events, |e| match e {
            Event::Voice(f) if f.group == call.group_id => Some(()),
            _ => None,
        })
        .await
        .context("the callee heard nothing before the cut")?;
        callee_wire.cut();
        anyhow::Ok((call, Instant::now()))
    };
    let calling = call::run(&caller, &args, std::future::pending(), |l| {
        lines.push(l.to_owned());
    });
    let (cut, called) =
        tokio::time::timeout(PATIENCE, async { tokio::join!(callee_side, calling) })
            .await
            .context("the call did not end")?;
    let (call, cut_at) = cut?;
    let report = called?;
    let noticed = cut_at.elapsed();
    assert_eq!(report.call_id, call.call_id);
    assert_eq!(
        report.ended_by_peer,
        Some(pb::PrivateCallEndReason::PeerDisconnected)
    );
    assert!(
        report.talk.frames_sent < 400,
        "talked on: {:?}",
        report.talk
    );
    assert!(noticed < Duration::from_secs(5), "{noticed:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(format!("{CALLEE} ended the call: PeerDisconnected").as_str())
    );
    let told = expect(&mut caller_events, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == call.call_id => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(told, pb::PrivateCallEndReason::PeerDisconnected);
    let group = call.group_id;
    assert!(
        !knows(&caller, group, call.call_id),
        "{:?}",
        caller.joined()
    );

    // The callee noticed too; back online, it is not in the call any more.
    let rejoined = reconnect_after_cut(&callee_wire, &mut callee_events).await?;
    assert!(rejoined.contains(&SQUAD), "{rejoined:?}");
    assert!(!rejoined.contains(&group), "{rejoined:?}");
    assert!(
        !knows(&callee, group, call.call_id),
        "{:?}",
        callee.joined()
    );
    // The caller through a reconnect of its own: the same.
    let rejoined = drop_and_reconnect(&caller_wire, &mut caller_events).await?;
    assert!(
        rejoined.contains(&SQUAD) && !rejoined.contains(&group),
        "{rejoined:?}"
    );
    assert!(!knows(&caller, group, call.call_id));
    // Nor does the relay count either as a party: no floor in that group.
    for client in [&caller, &callee] {
        let outcome = client
            .request_floor(group, pb::Priority::Normal, pb::FloorKind::Normal)
            .await;
        assert!(
            !matches!(outcome, Ok(FloorOutcome::Granted { .. })),
            "{} got the floor of the ended call's group: {outcome:?}",
            client.terminal_id()
        );
    }
    Ok(())
}

/// The callee loses the relay but comes back before the relay noticed (a
/// handover): its new login replaces the old session, which ends the call
/// for the caller (PEER_DISCONNECTED) at once rather than at the relay's
/// idle timeout; the new session is not in the call's group, and a new call
/// between the two works end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_back_before_the_relay_noticed_ends_the_call_once() -> anyhow::Result<()> {
    // The relay's idle timeout stays at its default (10 s): it never notices
    // the old connection is dead before the new login.
    let relay = Relay::start(&call_directory_toml()).await?;
    let callee_wire = Wire::to(relay.addr).await?;
    let caller = relay.client(CALLER).await?;
    let callee = Client::connect(through(&relay, &callee_wire, CALLEE)).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();
    let setup = caller.call(CALLEE, false).await?;
    let incoming = expect(&mut callee_events, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    callee.accept_call(incoming).await?;
    for events in [&mut caller_events, &mut callee_events] {
        expect(events, |e| {
            matches!(e, Event::Joined(ok)
                if ok.group.as_ref().is_some_and(|g| g.group_id == setup.group_id))
            .then_some(())
        })
        .await?;
    }

    callee_wire.cut_down();
    let lost = Instant::now();
    let rejoined = reconnect_after_cut(&callee_wire, &mut callee_events).await?;
    assert!(!rejoined.contains(&setup.group_id), "{rejoined:?}");
    let ended = expect(&mut caller_events, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == setup.call_id => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(ended, pb::PrivateCallEndReason::PeerDisconnected);
    let took = lost.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "ended by the relay's idle timeout, not the new login: {took:?}"
    );
    assert!(!knows(&caller, setup.group_id, setup.call_id));
    assert!(!knows(&callee, setup.group_id, setup.call_id));

    let (answering, calling) = (
        answer_args(&relay, CALLEE, false),
        call_args(&relay, CALLER, CALLEE, 0.5),
    );
    let (answered, called) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            answer::run(&callee, &answering, std::future::pending(), |_| {}),
            call::run(&caller, &calling, std::future::pending(), |_| {}),
        )
    })
    .await
    .context("the second call did not finish")?;
    let (report, heard) = (called?, answered?);
    let received: u64 = heard.heard.bursts.iter().map(|b| b.frames_received).sum();
    // The wire is whole again: every frame but perhaps the end marker.
    assert!(
        received + 1 >= report.talk.frames_sent && received > 0,
        "heard {received} of {}: {report:?} / {:?}",
        report.talk.frames_sent,
        heard.heard.bursts
    );
    assert_eq!(heard.ended, Some(pb::PrivateCallEndReason::Hangup));
    Ok(())
}

/// An emergency private call to a terminal in another call ends that call
/// for both its parties (PREEMPTED) and rings; the pre-empted caller hears
/// nothing of the emergency call, though it may reuse the same group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_call_preempts_the_callees_other_call() -> anyhow::Result<()> {
    let relay = Relay::start(&call_directory_toml()).await?;
    let caller = relay.client(CALLER).await?;
    let callee = relay.client(CALLEE).await?;
    let third = relay.client(THIRD).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();

    let old = caller.call(CALLEE, false).await?;
    let incoming = expect(&mut callee_events, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    callee.accept_call(incoming).await?;
    for events in [&mut caller_events, &mut callee_events] {
        expect(events, |e| {
            matches!(e, Event::Joined(ok)
                if ok.group.as_ref().is_some_and(|g| g.group_id == old.group_id))
            .then_some(())
        })
        .await?;
    }
    assert!(caller.joined().contains(&old.group_id));

    let args = CallArgs {
        emergency: true,
        ..call_args(&relay, THIRD, CALLEE, 0.6)
    };
    let callee_side = async {
        let preempted = expect(&mut callee_events, |e| match e {
            Event::CallEnded { call_id, reason } if *call_id == old.call_id => Some(*reason),
            _ => None,
        })
        .await?;
        let call = expect(&mut callee_events, |e| match e {
            Event::CallIncoming(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        ensure!(
            call.emergency && call.caller_terminal_id == THIRD,
            "{call:?}"
        );
        ensure!(
            callee.call_group(old.call_id).is_none(),
            "the old call is remembered"
        );
        callee.accept_call(call.call_id).await?;
        // Hear the emergency caller until it hangs up.
        let mut frames = 0;
        loop {
            match callee_events.recv().await {
                Some(Event::Voice(f)) if f.group == call.group_id && f.talker == THIRD => {
                    frames += 1;
                }
                Some(Event::CallEnded { call_id, .. }) if call_id == call.call_id => break,
                Some(_) => {}
                None => bail!("callee's events closed"),
            }
        }
        anyhow::Ok((preempted, call, frames))
    };
    let calling = call::run(&third, &args, std::future::pending(), |_| {});
    let (answered, called) =
        tokio::time::timeout(PATIENCE, async { tokio::join!(callee_side, calling) })
            .await
            .context("the emergency call did not finish")?;
    let (preempted, call, frames) = answered?;
    let report = called?;
    assert_eq!(preempted, pb::PrivateCallEndReason::Preempted);
    assert_eq!(report.call_id, call.call_id);
    assert!(report.talk.frames_sent > 0 && frames > 0, "heard {frames}");

    let old_end = expect(&mut caller_events, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == old.call_id => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(old_end, pb::PrivateCallEndReason::Preempted);
    assert_eq!(caller.call_group(old.call_id), None);
    let overheard = drain(&mut caller_events)
        .into_iter()
        .filter(|e| matches!(e, Event::Voice(_)))
        .count();
    assert_eq!(
        overheard, 0,
        "the pre-empted caller heard the emergency call"
    );
    for client in [&caller, &callee, &third] {
        assert!(
            !knows(client, old.group_id, old.call_id)
                && !knows(client, call.group_id, call.call_id),
            "{} still in a call group: {:?}",
            client.terminal_id(),
            client.joined()
        );
    }
    Ok(())
}
