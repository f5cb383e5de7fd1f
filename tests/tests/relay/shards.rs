//! The sharded datapath (`ptt_relay_core::shard`) through the real relay:
//! listeners on every shard hear each frame once, and a terminal whose
//! address changes mid-burst stays on its shard and keeps its session.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ptt_proto::pb::server_message::Body;
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

const GROUP: u32 = 11;

/// Every voice sequence number `client` hears until `quiet` passes without one.
async fn sequences(client: &Client, quiet: Duration) -> Vec<u16> {
    let mut heard = Vec::new();
    while let Some(frame) = client.recv_voice(quiet).await {
        heard.push(frame.header.sequence);
    }
    heard
}

/// The shard of each listener of `group`, by terminal, and its session id.
/// [`placement`] once `count` terminals listen: the relay joins a terminal
/// to its groups just after answering its log-in, so a client may be
/// connected a moment before it listens.
async fn placement_of(relay: &TestRelay, group: u32, count: usize) -> HashMap<u32, (u8, u64)> {
    let deadline = tokio::time::Instant::now() + ptt_tests::PATIENCE;
    loop {
        let placed = placement(relay, group);
        if placed.len() >= count || tokio::time::Instant::now() >= deadline {
            return placed;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn placement(relay: &TestRelay, group: u32) -> HashMap<u32, (u8, u64)> {
    relay
        .groups
        .get(group)
        .expect("group")
        .listeners()
        .iter()
        .map(|link| (link.terminal, (link.shard, link.session)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_on_every_shard_hear_every_frame_once_and_in_order() -> anyhow::Result<()> {
    const FRAMES: u16 = 50;
    let ids = 1..41;
    let directory = TestDirectory::new()
        .guards(ids.clone())
        .group(GROUP, ids.clone());
    let relay = TestRelay::start_with(&directory, |config| config.shards = 2).await?;
    let mut clients = relay.connect_all(ids).await;
    let shards = placement_of(&relay, GROUP, 40).await;
    assert_eq!(shards.len(), 40, "everyone listens");
    let used: BTreeSet<u8> = shards.values().map(|(shard, _)| *shard).collect();
    // A connection's shard follows the first byte of its random id: forty
    // on one shard would happen once in 2^39 runs.
    assert_eq!(used, BTreeSet::from([0, 1]), "both shards serve listeners");

    let talker = &mut clients[0];
    let burst = granted(&talker.press(GROUP).await?).expect("granted");
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..FRAMES {
        ticker.tick().await;
        talker.send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients.into_iter().skip(1) {
        tasks.spawn(async move {
            let heard = sequences(&client, Duration::from_millis(1500)).await;
            (client.terminal, heard)
        });
    }
    let talker_shard = shards[&1].0;
    let mut remote_listeners = 0;
    while let Some(result) = tasks.join_next().await {
        let (terminal, heard) = result?;
        assert_eq!(
            heard,
            (0..FRAMES).collect::<Vec<_>>(),
            "terminal {terminal} on shard {}",
            shards[&terminal].0
        );
        remote_listeners += usize::from(shards[&terminal].0 != talker_shard);
    }
    assert!(remote_listeners > 0);
    // One handover per frame to the one other shard, never one per listener.
    assert_eq!(relay.metrics.shard_handovers.get(), u64::from(FRAMES));
    assert_eq!(relay.metrics.shard_handover_dropped.get(), 0);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_whose_address_changes_mid_burst_keeps_its_session_and_its_voice()
-> anyhow::Result<()> {
    const FRAMES: u16 = 150;
    const MOVES: u16 = 8;
    let directory = TestDirectory::new().guards(1..=2).group(GROUP, 1..=2);
    let relay = TestRelay::start_with(&directory, |config| config.shards = 2).await?;
    let mut clients = relay.connect_all([1, 2]).await;
    let before = placement_of(&relay, GROUP, 2).await;
    assert_eq!(before.len(), 2, "both listen: {before:?}");
    let listener = Arc::new(clients.pop().expect("listener"));
    let mut talker = clients.pop().expect("talker");
    let burst = granted(&talker.press(GROUP).await?).expect("granted");

    let hearing = tokio::spawn({
        let listener = listener.clone();
        async move { sequences(&listener, Duration::from_millis(1500)).await }
    });
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..FRAMES {
        ticker.tick().await;
        talker.send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
        // Both move, at different moments, eight times each: with the
        // kernel's address hash alone each move would land on the other
        // shard half the time, which does not know the connection.
        if seq % (FRAMES / MOVES) == 5 {
            talker.rebind()?;
        }
        if seq % (FRAMES / MOVES) == 12 {
            listener.rebind()?;
        }
    }
    let heard = hearing.await?;
    // Every frame once, in order; a datagram in flight at the moment of a
    // move may be lost (unreliable by design), nothing more.
    let distinct: BTreeSet<u16> = heard.iter().copied().collect();
    assert_eq!(distinct.len(), heard.len(), "no duplicates: {heard:?}");
    assert!(heard.is_sorted(), "in order: {heard:?}");
    assert!(
        heard.len() >= usize::from(FRAMES - MOVES),
        "{} of {FRAMES} frames heard across {MOVES} moves",
        heard.len()
    );
    // The same sessions on the same shards: nobody logged in again.
    assert_eq!(placement(&relay, GROUP), before);
    assert!(
        matches!(talker.release(GROUP).await?, Body::Ack(_)),
        "the talker's control stream still answers"
    );
    relay.stop().await?;
    Ok(())
}
