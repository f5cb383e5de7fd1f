//! Voice between relays (`ptt_cluster::VoiceBus`) over a real NATS server:
//! each relay its own connection, as separate `pttd` processes would be.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use bytes::Bytes;
use ptt_cluster::{GroupVoice, VoiceBus};
use ptt_tests::PATIENCE;
use ptt_tests::nats::NatsServer;

const GROUP: u32 = 11;
/// Ten seconds of one talker's frames.
const FRAMES: u32 = 500;
/// The number of the frames sent until every relay hears them.
const WARM_UP: u32 = u32::MAX;

async fn bus(nats: &NatsServer, relay: &str) -> anyhow::Result<VoiceBus> {
    let client = async_nats::connect(nats.url()).await?;
    Ok(VoiceBus::new(client, relay)?)
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A datagram standing for frame `n`: its number and its send time.
fn frame(n: u32) -> Bytes {
    let mut bytes = n.to_be_bytes().to_vec();
    bytes.extend_from_slice(&unix_us().to_be_bytes());
    bytes.resize(80, 0);
    Bytes::from(bytes)
}

/// Reads frames from `voice` until `count` came or nothing came for a
/// second: their numbers and one-way delays (ms).
async fn hear(voice: &mut GroupVoice, count: usize) -> Vec<(u32, String, f64)> {
    let mut heard = Vec::new();
    while heard.len() < count {
        let Ok(Some(remote)) = tokio::time::timeout(Duration::from_secs(1), voice.next()).await
        else {
            break;
        };
        let d = &remote.datagram;
        let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        if n == WARM_UP {
            continue;
        }
        let sent = u64::from_be_bytes(d[4..12].try_into().unwrap_or_default());
        heard.push((
            n,
            remote.relay().to_owned(),
            unix_us().saturating_sub(sent) as f64 / 1000.0,
        ));
    }
    heard
}

/// A talker on relay A, listeners on B and C: each of them gets every frame
/// exactly once and in order, and A none of its own; groups keep apart (a
/// frame of group 12 reaches the relay listening to 12, not group 11's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listening_relay_gets_each_frame_once_and_the_talkers_relay_none()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let (a, b, c) = (
        bus(&nats, "relay-a").await?,
        bus(&nats, "relay-b").await?,
        bus(&nats, "relay-c").await?,
    );
    let mut at_a = a.subscribe(GROUP).await?;
    let mut at_b = b.subscribe(GROUP).await?;
    let mut at_c = c.subscribe(GROUP).await?;
    let mut other_group_at_c = c.subscribe(GROUP + 1).await?;
    // The subscriptions are in place once a warm-up frame reaches both.
    for voice in [&a, &b, &c] {
        voice.flush().await?;
    }
    let warm_up = async {
        loop {
            a.publish(GROUP, frame(WARM_UP)).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (got_b, got_c) = tokio::join!(
                tokio::time::timeout(Duration::from_millis(100), at_b.next()),
                tokio::time::timeout(Duration::from_millis(100), at_c.next())
            );
            if got_b.is_ok() && got_c.is_ok() {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(PATIENCE, warm_up)
        .await
        .context("no warm-up frame reached both relays")??;

    // B and C listen while A talks, as their fan-out would.
    let listen = |mut voice: GroupVoice| {
        tokio::spawn(async move { (hear(&mut voice, FRAMES as usize).await, voice) })
    };
    let (listening_b, listening_c) = (listen(at_b), listen(at_c));
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for n in 0..FRAMES {
        ticker.tick().await;
        a.publish(GROUP, frame(n)).await?;
    }
    b.publish(GROUP + 1, frame(0)).await?;
    let ((heard_b, mut at_b), (heard_c, mut at_c)) = (listening_b.await?, listening_c.await?);
    for (name, heard) in [("b", &heard_b), ("c", &heard_c)] {
        let numbers: Vec<u32> = heard.iter().map(|h| h.0).collect();
        ensure!(
            numbers == (0..FRAMES).collect::<Vec<_>>(),
            "relay {name} heard {} frames, not each of {FRAMES} once in order",
            numbers.len()
        );
        ensure!(heard.iter().all(|h| h.1 == "relay-a"));
    }
    let echoed = tokio::time::timeout(Duration::from_millis(300), at_a.next()).await;
    ensure!(echoed.is_err(), "relay a heard its own talker: {echoed:?}");
    // (Warm-up frames included: a never heard a single one of its own.)
    for (name, voice) in [("b", &mut at_b), ("c", &mut at_c)] {
        let stray = tokio::time::timeout(Duration::from_millis(100), voice.next()).await;
        ensure!(
            stray.is_err(),
            "relay {name} heard more in group {GROUP}: {stray:?}"
        );
    }
    let other = tokio::time::timeout(PATIENCE, other_group_at_c.next())
        .await
        .context("group 12's frame never came")?
        .context("connection gone")?;
    assert_eq!(other.relay(), "relay-b");

    let mut delays: Vec<f64> = heard_b.iter().chain(&heard_c).map(|h| h.2).collect();
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "relay to relay through NATS, one-way: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} frames",
        at(0.5),
        at(0.99),
        at(1.0),
        delays.len()
    );
    Ok(())
}

/// A relay id that is not one subject token is refused, not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_id_that_would_break_subjects_is_refused() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let client = async_nats::connect(nats.url()).await?;
    for id in ["", "relay.a", "relay a", "*", ">"] {
        ensure!(
            VoiceBus::new(client.clone(), id).is_err(),
            "{id:?} accepted"
        );
    }
    Ok(())
}
