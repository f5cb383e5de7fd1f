//! Private calls with `ptt call` and `ptt answer` against a real relay on
//! loopback: a call answered, heard and hung up, and every way a call does
//! not happen, each with the reason.

use crate::common;

use std::time::{Duration, Instant};

use anyhow::Context;
use common::calls::{
    CALLEE, CALLER, OFFLINE, SLEEPER, SQUAD, THIRD, answer_args, call_args, call_directory_toml,
    joined_by_relay, knows,
};
use common::{PATIENCE, Relay, drain, expect};
use ptt_cli::cli::answer;
use ptt_cli::cli::call::{self, CallArgs};
use ptt_client::Event;
use ptt_proto::pb;
use ptt_relay_core::private_call::PRIVATE_CALL_GROUP_BASE;

/// `ptt call` and `ptt answer` run side by side: both parties are joined to
/// the call's group, the callee hears the caller's tone, the caller hangs
/// up, the callee's report says so, and both forget the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptt_call_is_answered_heard_and_hung_up() -> anyhow::Result<()> {
    let relay = Relay::start(&call_directory_toml()).await?;
    let caller = relay.client(CALLER).await?;
    let callee = relay.client(CALLEE).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();
    let (mut caller_lines, mut callee_lines) = (Vec::new(), Vec::new());
    // `join!` polls in order: `ptt answer` is waiting before the call is set up.
    let (answering, calling) = (
        answer_args(&relay, CALLEE, false),
        call_args(&relay, CALLER, CALLEE, 1.0),
    );
    let (answered, called) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            answer::run(&callee, &answering, std::future::pending(), |l| {
                callee_lines.push(l.to_owned())
            },),
            call::run(&caller, &calling, std::future::pending(), |l| caller_lines
                .push(l.to_owned()),),
        )
    })
    .await
    .context("call did not finish")?;
    let report = called?;
    let heard = answered?;
    let (id, group) = (report.call_id, report.group);
    assert!(group >= PRIVATE_CALL_GROUP_BASE, "{report:?}");
    assert_eq!(
        (
            heard.call.call_id,
            heard.call.caller_terminal_id,
            heard.call.group_id
        ),
        (id, CALLER, group)
    );
    assert!(!heard.rejected);
    assert_eq!(heard.ended, Some(pb::PrivateCallEndReason::Hangup));
    assert_eq!(report.ended_by_peer, None, "the caller hung up");
    assert!(report.talk.access_time.is_some(), "{:?}", report.talk);
    // Every frame of the tone, plus an end-of-burst frame if the last one
    // went out unmarked.
    let encoded = report.talk.frames_encoded as u64;
    assert!(
        (encoded..=encoded + 1).contains(&report.talk.frames_sent) && encoded >= 45,
        "one second of tone: {:?}",
        report.talk
    );
    let received: u64 = heard.heard.bursts.iter().map(|b| b.frames_received).sum();
    // Loopback loses nothing: every frame but perhaps the end-of-burst
    // marker.
    assert!(
        received + 1 >= report.talk.frames_sent,
        "the callee heard {received} of {} frames: {:?}",
        report.talk.frames_sent,
        heard.heard
    );
    assert!(
        heard.heard.bursts.iter().all(|b| b.talker == CALLER),
        "{:?}",
        heard.heard.bursts
    );
    assert!(!heard.heard.pcm.is_empty());
    assert_eq!(
        caller_lines,
        [
            format!("calling {CALLEE}: call {id}, group {group}"),
            format!("{CALLEE} answered; talking in group {group}"),
            "hung up".to_owned(),
        ]
    );
    assert_eq!(
        callee_lines.last().map(String::as_str),
        Some(format!("call {id}: the caller ended it (Hangup)").as_str()),
        "{callee_lines:?}"
    );

    let (caller_seen, callee_seen) = (drain(&mut caller_events), drain(&mut callee_events));
    assert!(joined_by_relay(&caller_seen, group), "caller not joined");
    assert!(joined_by_relay(&callee_seen, group), "callee not joined");
    assert!(caller_seen.iter().any(
        |e| matches!(e, Event::CallAccepted { call_id, group: g } if *call_id == id && *g == group)
    ));
    assert!(callee_seen.iter().any(|e| matches!(e,
        Event::CallEnded { call_id, reason: pb::PrivateCallEndReason::Hangup } if *call_id == id)));
    for (who, client) in [("caller", &caller), ("callee", &callee)] {
        assert!(
            !knows(client, group, id),
            "the {who} still knows the call group: {:?}",
            client.joined()
        );
        assert!(client.joined().contains(&SQUAD), "{who}");
    }
    Ok(())
}

/// Every way a call does not happen ends `ptt call` with an error that
/// says why: declined by `ptt answer --reject`, callee offline, no such
/// terminal, callee busy in another call, nobody answering in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptt_call_says_why_a_call_did_not_happen() -> anyhow::Result<()> {
    let relay = Relay::start(&call_directory_toml()).await?;
    let caller = relay.client(CALLER).await?;
    let callee = relay.client(CALLEE).await?;
    let (answering, calling) = (
        answer_args(&relay, CALLEE, true),
        call_args(&relay, CALLER, CALLEE, 1.0),
    );
    let (answered, called) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            answer::run(&callee, &answering, std::future::pending(), |_| {}),
            call::run(&caller, &calling, std::future::pending(), |_| {}),
        )
    })
    .await?;
    let declined = called.expect_err("declined");
    assert_eq!(
        format!("{declined:#}"),
        format!("{CALLEE} rejected the call: Declined")
    );
    let answered = answered?;
    assert!(
        answered.rejected && answered.ended.is_none(),
        "{answered:?}"
    );
    assert_eq!(answered.call.caller_terminal_id, CALLER);
    assert!(!knows(
        &caller,
        answered.call.group_id,
        answered.call.call_id
    ));
    assert!(!knows(
        &callee,
        answered.call.group_id,
        answered.call.call_id
    ));

    let attempt = |to: u32| {
        let args = call_args(&relay, CALLER, to, 0.2);
        let caller = caller.clone();
        async move {
            tokio::time::timeout(
                PATIENCE,
                call::run(&caller, &args, std::future::pending(), |_| {}),
            )
            .await
            .context("ptt call hangs")?
            .map(|report| format!("connected: {report:?}"))
        }
    };
    let offline = attempt(OFFLINE).await.expect_err("offline");
    assert_eq!(
        format!("{offline:#}"),
        format!("{OFFLINE} rejected the call: Offline")
    );
    let unknown = attempt(999).await.expect_err("no such terminal");
    let unknown = format!("{unknown:#}");
    assert!(
        unknown.contains("UnknownTerminal") && unknown.contains("no such terminal"),
        "{unknown}"
    );

    // The callee is in a call with a third guard: busy for anyone else.
    let third = relay.client(THIRD).await?;
    let mut third_events = third.events();
    let mut callee_events = callee.events();
    let setup = third.call(CALLEE, false).await?;
    let incoming = expect(&mut callee_events, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    assert_eq!(incoming, setup.call_id);
    callee.accept_call(incoming).await?;
    expect(&mut third_events, |e| {
        matches!(e, Event::CallAccepted { call_id, .. } if *call_id == setup.call_id).then_some(())
    })
    .await?;
    let busy = attempt(CALLEE).await.expect_err("busy");
    assert_eq!(
        format!("{busy:#}"),
        format!("{CALLEE} rejected the call: Busy")
    );
    // ...and the call in progress is untouched.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for event in drain(&mut third_events)
        .into_iter()
        .chain(drain(&mut callee_events))
    {
        assert!(
            !matches!(event, Event::CallEnded { .. }),
            "busy attempt ended the call: {event:?}"
        );
    }
    assert_eq!(callee.call_group(setup.call_id), Some(setup.group_id));
    assert_eq!(third.call_group(setup.call_id), Some(setup.group_id));

    // Nobody answers: `ptt call` gives up after --answer-timeout and hangs
    // up, so the callee stops ringing.
    let sleeper = relay.client(SLEEPER).await?;
    let mut ringing = sleeper.events();
    let args = CallArgs {
        answer_timeout: 0.3,
        ..call_args(&relay, CALLER, SLEEPER, 0.2)
    };
    let started = Instant::now();
    let unanswered = call::run(&caller, &args, std::future::pending(), |_| {})
        .await
        .expect_err("nobody answered");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        format!("{unanswered:#}"),
        format!("no answer from {SLEEPER} within 300ms; hung up")
    );
    let rang = expect(&mut ringing, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    let ended = expect(&mut ringing, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == rang => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(ended, pb::PrivateCallEndReason::Hangup);
    assert_eq!(sleeper.call_group(rang), None);
    Ok(())
}
