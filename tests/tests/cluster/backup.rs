//! A backup call across relays: a guard logged in to relay A presses
//! emergency at its compound; the guards of the neighbouring compound are
//! logged in to relay B, and B's zone logic brings them into the call as
//! A's decided, so they are told and hear the caller; a patrol's guards kept
//! for an emergency decided on one relay stay when the patrol, followed by
//! another relay, moves on.

use std::time::Duration;

use anyhow::{Context, ensure};
use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::client::{acked, granted};
use ptt_tests::geo::location;
use ptt_tests::nats::NatsServer;

use crate::{in_process, presence};
use ptt_tests::{Client, TestDirectory, opus};

const CALLER: u32 = 301;
const NEIGHBOUR: u32 = 331;
const GROUP: u32 = 101;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_call_on_one_relay_brings_in_the_neighbours_on_another() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    // Compound A at the road's start, compound D 300 m on (inside the
    // default 400 m backup radius).
    let directory = TestDirectory::new()
        .dispatcher(1)
        .group_with(1, "control-room", [1], &[])
        .compound(101, "Compound A", 0.0, &[301, 302], 1)
        .compound(104, "Compound D", 300.0, &[331, 332], 1);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut caller = Client::connect(a.addr, &a.cert, CALLER).await?;
    let mut neighbour = Client::connect(b.addr, &b.cert, NEIGHBOUR).await?;

    ensure!(
        acked(&caller.request(location(0.0, 50.0)).await?),
        "the caller's position"
    );
    let answer = caller
        .press_with(GROUP, pb::Priority::Emergency, pb::FloorKind::Emergency)
        .await?;
    let burst = granted(&answer).with_context(|| format!("emergency: {answer:?}"))?;
    let told = neighbour
        .expect_body(|body| match body {
            Body::Regrouped(r) if r.group_id == GROUP => Some(r.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        told.change == i32::from(pb::RegroupChange::Added)
            && told.reason == i32::from(pb::RegroupReason::EmergencyBackup),
        "the neighbour on B was told {told:?}"
    );
    // The caller talks on until the neighbour on B hears it.
    let mut sequence = 0u16;
    loop {
        caller.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        sequence += 1;
        if let Some(voice) = neighbour.recv_voice(Duration::from_millis(20)).await {
            ensure!(voice.header.talker_id == CALLER, "{:?}", voice.header);
            break;
        }
        ensure!(sequence < 250, "the neighbour on B never heard the caller");
    }
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// A patrol's guards kept for an emergency across relays: the lead on A
/// brings compound A's guards into the patrol group; a guard on B declares
/// an emergency in it, decided on B, which keeps them for the emergency
/// (they were the patrol's); the lead moves on, and A's zone logic must not
/// take them out (it was told they are the emergency's now).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrols_guards_stay_for_an_emergency_decided_on_another_relay() -> anyhow::Result<()> {
    const PATROL: u32 = 31;
    const LEAD: u32 = 201;
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new()
        .dispatcher(1)
        .group_with(1, "control-room", [1], &[])
        .patrol(PATROL, LEAD, 1)
        .compound(101, "Compound A", 0.0, &[301, 302], 1);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut lead = Client::connect(a.addr, &a.cert, LEAD).await?;
    let mut dispatcher = Client::connect(b.addr, &b.cert, 1).await?;
    let mut guard = Client::connect(b.addr, &b.cert, CALLER).await?;
    // B decides the patrol group's floor.
    ensure!(
        granted(&dispatcher.press(PATROL).await?).is_some(),
        "B's press"
    );
    ensure!(acked(&dispatcher.release(PATROL).await?), "B's release");

    ensure!(
        acked(&lead.request(location(0.0, 0.0)).await?),
        "the lead's position"
    );
    guard
        .expect_body(|body| match body {
            Body::Regrouped(r) if r.group_id == PATROL => Some(()),
            _ => None,
        })
        .await
        .context("the patrol on A did not pick up the guard on B")?;
    let answer = guard
        .press_with(PATROL, pb::Priority::Emergency, pb::FloorKind::Emergency)
        .await?;
    ensure!(
        granted(&answer).is_some(),
        "the guard's emergency: {answer:?}"
    );
    // The lead's relay hears that the emergency keeps the guard (as backup).
    presence::until(a, "/api/v1/groups", Duration::from_secs(5), |answer| {
        let patrol = presence::entry(answer, "groups", PATROL)?;
        let kept = patrol["dynamic_members"].as_array().is_some_and(|members| {
            members
                .iter()
                .any(|m| m["terminal"] == CALLER && m["reason"] == "backup")
        });
        Ok(kept)
    })
    .await?;
    ensure!(
        acked(&lead.request(location(-1000.0, 0.0)).await?),
        "the lead's move"
    );
    let dropped = guard
        .expect_within(Duration::from_secs(1), |message| {
            matches!(&message.body, Some(Body::Regrouped(r))
                if r.group_id == PATROL && r.terminal_id == CALLER
                    && r.change == i32::from(pb::RegroupChange::Removed))
        })
        .await?;
    ensure!(
        dropped.is_none(),
        "the guard was dropped mid-emergency: {dropped:?}"
    );
    drop((lead, dispatcher, guard));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}
