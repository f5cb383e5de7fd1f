//! Relays in one cluster (`pttd --cluster`) serving one group together: real
//! relays with their own data, QUIC ports and NATS connections, terminals
//! logged in to different relays, one NATS server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::client::{acked, granted};
use ptt_tests::nats::NatsServer;

use crate::in_process;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

const GROUP: u32 = 11;
const RELAYS: [&str; 3] = ["relay-a", "relay-b", "relay-c"];
/// Frames of the burst every listener must hear once each.
const FRAMES: u16 = 200;
/// How long a listener waits for a frame before counting the rest lost.
const QUIET: Duration = Duration::from_secs(2);

fn district() -> TestDirectory {
    TestDirectory::new().guards(1..=6).group(GROUP, 1..=6)
}

/// Relays a, b and c of one cluster on `nats`.
async fn cluster(nats: &NatsServer, directory: &TestDirectory) -> anyhow::Result<Vec<TestRelay>> {
    in_process::relays(nats, directory, &RELAYS).await
}

/// Sends frame 0 of `burst` every 20 ms until every listener heard one:
/// their relays hear the group's voice from then on.
async fn warm_up(talker: &Client, listeners: &[&Client], burst: u32) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(5);
    let mut heard = vec![false; listeners.len()];
    while heard.iter().any(|h| !h) {
        ensure!(
            Instant::now() < until,
            "not every relay hears the group: {heard:?}"
        );
        talker.send_datagram(opus::datagram(GROUP, burst, 0, 0))?;
        for (listener, heard) in listeners.iter().zip(heard.iter_mut()) {
            while let Some(frame) = listener.recv_voice(Duration::from_millis(20)).await {
                *heard |= frame.header.sequence == 0;
            }
        }
    }
    Ok(())
}

/// Reads `listener`'s voice until nothing came for [`QUIET`]: how often each
/// sequence number of `talker`'s burst `burst` arrived.
async fn heard(listener: &Client, talker: u32, burst: u32) -> BTreeMap<u16, u32> {
    let mut counts = BTreeMap::new();
    while let Some(frame) = listener.recv_voice(QUIET).await {
        let header = frame.header;
        if header.talker_id == talker && header.burst_id == burst && header.sequence > 0 {
            *counts.entry(header.sequence).or_default() += 1;
        }
    }
    counts
}

fn exactly_once(counts: &BTreeMap<u16, u32>, frames: u16) -> Result<(), String> {
    let missing: Vec<u16> = (1..=frames).filter(|s| !counts.contains_key(s)).collect();
    let twice: Vec<u16> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    if missing.is_empty() && twice.is_empty() && counts.len() == usize::from(frames) {
        Ok(())
    } else {
        Err(format!(
            "{} of {frames} heard; missing {missing:?}, twice {twice:?}",
            counts.len()
        ))
    }
}

/// What relay `relay`'s ops port says of group [`GROUP`]: its relay id and
/// whether it decides the group's floor.
async fn decided_here(relay: &TestRelay) -> anyhow::Result<(String, bool)> {
    let groups: serde_json::Value = reqwest::get(format!("http://{}/api/v1/groups", relay.ops))
        .await?
        .json()
        .await?;
    let group = groups["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["id"] == GROUP))
        .with_context(|| format!("no group {GROUP} in {groups}"))?;
    Ok((
        groups["relay"].as_str().unwrap_or_default().to_owned(),
        group["decided_here"].as_bool().context("decided_here")?,
    ))
}

fn taken_by(body: &Body) -> Option<(u32, u32)> {
    match body {
        Body::FloorTaken(taken) => Some((taken.holder_terminal_id, taken.burst_id)),
        _ => None,
    }
}

/// A talker on relay A; listeners on A, B and C hear every frame of its
/// burst exactly once; a terminal logging in to C mid-burst is told who
/// talks and hears the rest. A terminal on B asking meanwhile is queued by
/// A's arbiter, is granted when A's talker lets go, and is heard on A and C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_on_one_relay_is_heard_once_on_every_relay_and_the_floor_is_one()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = district();
    let relays = cluster(&nats, &directory).await?;
    let (a, b, c) = (&relays[0], &relays[1], &relays[2]);
    let mut talker = Client::connect(a.addr, &a.cert, 1).await?;
    let mut on_a = Client::connect(a.addr, &a.cert, 2).await?;
    let mut on_b = Client::connect(b.addr, &b.cert, 3).await?;
    let mut on_c = Client::connect(c.addr, &c.cert, 4).await?;

    let answer = talker.press(GROUP).await?;
    let burst = granted(&answer).with_context(|| format!("not granted: {answer:?}"))?;
    for listener in [&mut on_a, &mut on_b, &mut on_c] {
        let taken = listener.expect_body(taken_by).await?;
        ensure!(taken == (1, burst), "told {taken:?}, not (1, {burst})");
    }
    warm_up(&talker, &[&on_a, &on_b, &on_c], burst).await?;
    // The ops API says which relay decides: A, whose terminal pressed first.
    for (relay, name, decides) in [
        (a, RELAYS[0], true),
        (b, RELAYS[1], false),
        (c, RELAYS[2], false),
    ] {
        let said = decided_here(relay).await?;
        ensure!(said == (name.to_owned(), decides), "{name} says {said:?}");
    }

    // Half the burst, a late entry on C, the other half.
    let half = FRAMES / 2;
    for sequence in 1..=half {
        talker.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut late = Client::connect(c.addr, &c.cert, 5).await?;
    let told = late.expect_body(taken_by).await?;
    ensure!(told == (1, burst), "the late entry was told {told:?}");
    for sequence in half + 1..=FRAMES {
        talker.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (heard_a, heard_b, heard_c, heard_late) = tokio::join!(
        heard(&on_a, 1, burst),
        heard(&on_b, 1, burst),
        heard(&on_c, 1, burst),
        heard(&late, 1, burst)
    );
    for (name, counts) in [("A", &heard_a), ("B", &heard_b), ("C", &heard_c)] {
        exactly_once(counts, FRAMES).map_err(|e| anyhow::anyhow!("listener on {name}: {e}"))?;
    }
    let late_heard: Vec<u16> = heard_late.keys().copied().collect();
    ensure!(
        late_heard.iter().all(|s| *s > half) && heard_late.len() >= usize::from(FRAMES - half) - 1,
        "the late entry heard {late_heard:?}"
    );
    ensure!(
        heard_late.values().all(|n| *n == 1),
        "the late entry heard a frame twice"
    );

    // B's terminal asks while A's talks: A's arbiter queues it.
    let queued = on_b.press(GROUP).await?;
    let Body::FloorQueued(place) = &queued else {
        anyhow::bail!("B's press while A talks answered {queued:?}");
    };
    ensure!(place.position == 1, "queued at {}", place.position);
    talker.release(GROUP).await?;
    let next = on_b.expect_body(granted).await?;
    ensure!(next != burst, "B's grant reuses burst {burst}");
    // At once, no warm-up: B's gate opened before its terminal heard of the
    // grant, so the very first frame goes through.
    for sequence in 1..=20 {
        on_b.send_datagram(opus::datagram(GROUP, next, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for listener in [&mut on_a, &mut on_c, &mut talker] {
        let taken = listener
            .expect_body(|body| taken_by(body).filter(|(holder, _)| *holder == 3))
            .await?;
        ensure!(taken == (3, next), "told {taken:?}");
    }
    for (name, listener) in [("A", &on_a), ("C", &on_c), ("A's talker", &talker)] {
        exactly_once(&heard(listener, 3, next).await, 20)
            .map_err(|e| anyhow::anyhow!("{name} hearing B: {e}"))?;
    }
    let released = on_b.release(GROUP).await?;
    ensure!(
        matches!(released, Body::Ack(_)),
        "B's release: {released:?}"
    );
    on_c.expect_body(|body| match body {
        Body::FloorIdle(idle) if idle.burst_id == next => Some(()),
        _ => None,
    })
    .await?;

    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// Two terminals on two relays press at the same moment for a floor nobody
/// owns yet: one relay takes the lease, and its arbiter grants one and
/// queues the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_presses_on_two_relays_get_one_grant() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = district();
    let relays = cluster(&nats, &directory).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut on_a = Client::connect(a.addr, &a.cert, 1).await?;
    let mut on_b = Client::connect(b.addr, &b.cert, 2).await?;
    let (answer_a, answer_b) = tokio::join!(on_a.press(GROUP), on_b.press(GROUP));
    let answers = [answer_a?, answer_b?];
    let grants = answers.iter().filter(|a| granted(a).is_some()).count();
    let queued = answers
        .iter()
        .filter(|a| matches!(a, Body::FloorQueued(q) if q.position == 1))
        .count();
    ensure!(grants == 1 && queued == 1, "answers: {answers:?}");
    // Both relays' gates agree on the one holder.
    let holder = answers
        .iter()
        .position(|a| granted(a).is_some())
        .map(|i| i as u32 + 1);
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let gates: Vec<Option<u32>> = [a, b]
            .iter()
            .map(|relay| {
                relay
                    .groups
                    .get(GROUP)
                    .and_then(|g| g.holder())
                    .map(|(t, _)| t)
            })
            .collect();
        if gates.iter().all(|gate| *gate == holder) {
            break;
        }
        ensure!(Instant::now() < until, "gates {gates:?}, holder {holder:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// Waits until every relay of `relays` says whether it decides [`GROUP`]'s
/// floor as `decides` says (an isolated relay decides for itself; one back
/// in the cluster does not until it takes the lease).
async fn until_deciding(
    relays: &[&TestRelay],
    decides: bool,
    within: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    loop {
        let now: Vec<bool> = relays
            .iter()
            .map(|relay| relay.groups.get(GROUP).is_some_and(|g| g.decides_here()))
            .collect();
        if now.iter().all(|d| *d == decides) {
            return Ok(());
        }
        ensure!(
            Instant::now() < until,
            "relays decide {now:?}, not all {decides}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `frames` frames of `burst` from `talker` after a warm-up heard by
/// `hearing`, and says what `hearing` and `deaf` heard of them.
async fn talk_and_listen(
    talker: &Client,
    talker_id: u32,
    burst: u32,
    hearing: &Client,
    deaf: &Client,
) -> anyhow::Result<(BTreeMap<u16, u32>, BTreeMap<u16, u32>)> {
    warm_up(talker, &[hearing], burst)
        .await
        .with_context(|| format!("terminal {talker_id}'s burst {burst}"))?;
    for sequence in 1..=20 {
        talker.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(tokio::join!(
        heard(hearing, talker_id, burst),
        heard(deaf, talker_id, burst)
    ))
}

/// NATS dies: each relay goes on serving its own terminals, as a radio site
/// cut off from its core does (site trunking): a press on A is granted and
/// heard on A, one on B at the same time is granted and heard on B, and
/// neither reaches the other relay. NATS comes back: the relays rejoin once
/// their floors are idle, and a talker on A is heard on B again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_each_relay_serves_its_own_terminals_and_rejoins_after() -> anyhow::Result<()>
{
    let mut nats = NatsServer::start().await?;
    let directory = district();
    let relays = cluster(&nats, &directory).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut talker_a = Client::connect(a.addr, &a.cert, 1).await?;
    let listener_a = Client::connect(a.addr, &a.cert, 2).await?;
    let mut talker_b = Client::connect(b.addr, &b.cert, 3).await?;
    let listener_b = Client::connect(b.addr, &b.cert, 4).await?;
    let first = talker_a.press(GROUP).await?;
    ensure!(granted(&first).is_some(), "before the outage: {first:?}");
    talker_a.release(GROUP).await?;
    until_deciding(&[a], true, Duration::from_secs(2)).await?;

    nats.kill().await?;
    let answer_b = talker_b.press(GROUP).await?;
    let burst_b = granted(&answer_b).with_context(|| format!("B alone: {answer_b:?}"))?;
    let answer_a = talker_a.press(GROUP).await?;
    let burst_a = granted(&answer_a).with_context(|| format!("A alone: {answer_a:?}"))?;
    let (on_b, on_a) = talk_and_listen(&talker_b, 3, burst_b, &listener_b, &listener_a).await?;
    exactly_once(&on_b, 20).map_err(|e| anyhow::anyhow!("B's listener hearing B: {e}"))?;
    ensure!(
        on_a.is_empty(),
        "A's listener heard B's talker without NATS: {on_a:?}"
    );
    let (on_a, on_b) = talk_and_listen(&talker_a, 1, burst_a, &listener_a, &listener_b).await?;
    exactly_once(&on_a, 20).map_err(|e| anyhow::anyhow!("A's listener hearing A: {e}"))?;
    ensure!(
        on_b.is_empty(),
        "B's listener heard A's talker without NATS: {on_b:?}"
    );
    talker_a.release(GROUP).await?;
    talker_b.release(GROUP).await?;

    nats.restart().await?;
    until_deciding(&[a, b], false, Duration::from_secs(15)).await?;
    let again = talker_a.press(GROUP).await?;
    let burst = granted(&again).with_context(|| format!("after the outage: {again:?}"))?;
    let (on_b, _) = talk_and_listen(&talker_a, 1, burst, &listener_b, &listener_a).await?;
    exactly_once(&on_b, 20).map_err(|e| anyhow::anyhow!("B hearing A after NATS is back: {e}"))?;
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// With `site-trunking = false` an operator prefers silence to a floor
/// decided apart from the cluster: NATS dies, and once the owner's lease
/// has run out a press on either relay is refused with the reason; NATS
/// comes back, and presses are granted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_site_trunking_presses_are_refused_while_nats_is_down() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let directory = district();
    let mut relays = Vec::new();
    for id in &RELAYS[..2] {
        relays.push(in_process::relay(&nats, &directory, id, |c| c.site_trunking = false).await?);
    }
    let (a, b) = (&relays[0], &relays[1]);
    let mut on_a = Client::connect(a.addr, &a.cert, 1).await?;
    let mut on_b = Client::connect(b.addr, &b.cert, 3).await?;
    ensure!(granted(&on_a.press(GROUP).await?).is_some(), "A's press");
    ensure!(acked(&on_a.release(GROUP).await?), "A's release");
    until_deciding(&[a], true, Duration::from_secs(2)).await?;

    nats.kill().await?;
    // The owner's lease lets it grant for at most its ttl after the last
    // renewal; after that nobody decides.
    until_deciding(&[a, b], false, Duration::from_secs(3)).await?;
    for (relay, client) in [("A", &mut on_a), ("B", &mut on_b)] {
        let answer = client.press(GROUP).await?;
        ensure!(
            matches!(&answer, Body::Error(e) if e.reason == i32::from(pb::ErrorReason::Internal)
                && e.detail.contains("site trunking is off")),
            "{relay} with NATS down: {answer:?}"
        );
    }

    nats.restart().await?;
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = on_b.press(GROUP).await?;
        if granted(&answer).is_some() {
            break;
        }
        ensure!(Instant::now() < until, "NATS back, B's press: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop((on_a, on_b));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// A talker's relay publishes its frames only while some other relay takes
/// the group's voice: with nobody listening on B, A publishes nothing; a
/// listener logs in on B mid-burst, B says at once that it hears the group,
/// and the listener hears the talker within a few frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talkers_frames_go_to_nats_only_while_another_relay_listens() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = district();
    let relays = in_process::relays(&nats, &directory, &RELAYS[..2]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut talker = Client::connect(a.addr, &a.cert, 1).await?;
    let listener_a = Client::connect(a.addr, &a.cert, 2).await?;
    let burst = granted(&talker.press(GROUP).await?).context("A's press")?;
    let mut sequence = 0u16;
    for _ in 0..25 {
        talker.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        sequence += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(listener_a.recv_voice(QUIET).await.is_some(), "A's listener");
    ensure!(
        a.metrics.cluster_voice_out.get() == 0,
        "A published {} frames nobody hears",
        a.metrics.cluster_voice_out.get()
    );
    let listener_b = Client::connect(b.addr, &b.cert, 3).await?;
    let joined_at = sequence;
    let first = loop {
        talker.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        sequence += 1;
        if let Some(frame) = listener_b.recv_voice(Duration::from_millis(20)).await {
            break frame.header.sequence;
        }
        ensure!(
            sequence < joined_at + 100,
            "B's listener never heard A's talker"
        );
    };
    eprintln!(
        "B's listener heard frame {} of a talker on A, {} frames after it logged in",
        first,
        first - joined_at
    );
    ensure!(
        first - joined_at <= 10,
        "B's listener first heard frame {first}, it logged in at {joined_at}"
    );
    ensure!(
        a.metrics.cluster_voice_out.get() >= u64::from(sequence - first),
        "A published {} frames, B's listener heard from frame {first} to {sequence}",
        a.metrics.cluster_voice_out.get()
    );
    drop((talker, listener_a, listener_b));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}
