//! A relay of a cluster killed with SIGKILL mid-burst, the relay that owns
//! the group's floor: its terminals move to the other relays (with the
//! resumption credential every relay of the cluster accepts), the floor
//! gets a new owner once the dead one's lease has run out, and the talker's
//! voice reaches every listener again, on every relay.
//!
//! Relays are `pttd` processes of their own (`ptt_tests::pttd`) sharing one
//! certificate, as a cluster's relays do; terminals are the client library
//! with its reconnect loop and the list of the cluster's relays.
//!
//! Bench (300 terminals on the dead relay's share, more on the others):
//! `PTT_BENCH_TERMINALS=900 cargo test -p ptt-tests --test cluster -- --ignored --nocapture failover_bench`

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_client::{Client as Terminal, ClientConfig, Event, Events, TalkError, Trust};
use ptt_cluster::{FloorLeases, LeaseConfig};
use ptt_proto::pb;
use ptt_tests::directory::secret;
use ptt_tests::nats::NatsServer;
use ptt_tests::{TestDirectory, opus};
use tokio_util::sync::CancellationToken;

use crate::processes::start_relays;

const GROUP: u32 = 11;
const TALKER: u32 = 1;
const FIRST_LISTENER: u32 = 100;

/// A terminal logged in to relay `home` of `relays`, knowing the others.
async fn log_in(
    id: u32,
    home: usize,
    relays: &[SocketAddr],
    cert: &Path,
) -> anyhow::Result<Terminal> {
    let mut config =
        ClientConfig::new(relays[home], Trust::Pinned(cert.to_owned()), id, secret(id));
    config.other_servers = (1..relays.len())
        .map(|step| relays[(home + step) % relays.len()])
        .collect();
    Ok(Terminal::connect(config).await?)
}

/// Talks in `GROUP` until `stop`: presses, sends a frame every 20 ms while
/// granted, and presses again whenever the talk ends (the relay went away
/// with the floor) once the client is back.
async fn keep_talking(talker: Terminal, stop: CancellationToken) -> Terminal {
    let mut sequence = 0u16;
    while !stop.is_cancelled() {
        let talk = talker.press(GROUP, pb::Priority::Normal, pb::FloorKind::Normal);
        let granted = tokio::select! {
            granted = talk.granted() => granted.is_ok(),
            () = stop.cancelled() => break,
        };
        if !granted {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => break,
            }
            sequence = sequence.wrapping_add(1);
            match talk.push_frame(opus::packet(sequence, 60)) {
                Ok(()) => {}
                Err(TalkError::Ended(_)) => break,
                Err(_) => {}
            }
        }
        let _ = talk.release().await;
    }
    talker
}

/// When a listener heard the talker again after `killed`, and whether it
/// had noticed its relay die first.
#[derive(Debug, Default, Clone, Copy)]
struct Back {
    noticed: Option<Duration>,
    reconnected: Option<Duration>,
    heard: Option<Duration>,
}

/// Follows a listener's events: says when it first hears the talker
/// (`first`), then, once `killed` is set, when it hears the talker again.
async fn follow(
    mut events: Events,
    first: tokio::sync::mpsc::UnboundedSender<()>,
    killed: tokio::sync::watch::Receiver<Option<Instant>>,
    stop: CancellationToken,
) -> Back {
    let mut back = Back::default();
    let mut told = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = stop.cancelled() => break,
        };
        let Some(event) = event else { break };
        let since = || killed.borrow().map(|at| at.elapsed());
        match event {
            Event::Voice(frame) if frame.talker == TALKER => {
                if !told {
                    told = true;
                    let _ = first.send(());
                }
                // Frames in flight at the kill land within milliseconds.
                if let Some(at) = *killed.borrow()
                    && frame.received_at > at + Duration::from_millis(200)
                {
                    back.heard = Some(frame.received_at - at);
                    break;
                }
            }
            Event::Disconnected { .. } if back.noticed.is_none() => back.noticed = since(),
            Event::Reconnected { .. } if back.reconnected.is_none() => back.reconnected = since(),
            _ => {}
        }
    }
    back
}

struct Outcome {
    /// Listeners that were on the killed relay.
    moved: Vec<Back>,
    /// Listeners on the other relays.
    stayed: Vec<Back>,
    /// After the kill: the dead owner's lease was gone, and another relay
    /// held the group's floor.
    lease: LeaseMoved,
}

/// When the floor's lease moved, from the kill.
#[derive(Debug, Default, Clone, Copy)]
struct LeaseMoved {
    freed: Option<Duration>,
    taken: Option<Duration>,
}

/// Reads the group's lease every 10 ms from the kill (set in `killed`)
/// until another relay than `dead` holds it or `stop`.
async fn watch_lease(
    nats: String,
    dead: &'static str,
    mut killed: tokio::sync::watch::Receiver<Option<Instant>>,
    stop: CancellationToken,
) -> anyhow::Result<LeaseMoved> {
    let client = async_nats::connect(nats).await?;
    let leases = FloorLeases::open(
        &async_nats::jetstream::new(client),
        "observer",
        LeaseConfig::default(),
    )
    .await?;
    let at = loop {
        if let Some(at) = *killed.borrow_and_update() {
            break at;
        }
        tokio::select! {
            changed = killed.changed() => changed?,
            () = stop.cancelled() => return Ok(LeaseMoved::default()),
        }
    };
    let mut moved = LeaseMoved::default();
    while !stop.is_cancelled() {
        let holder = leases.holder(GROUP).await?;
        if holder.as_ref().is_none_or(|h| h.relay != dead) {
            moved.freed.get_or_insert(at.elapsed());
        }
        if holder.is_some_and(|h| h.relay != dead) {
            moved.taken = Some(at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(moved)
}

/// `listeners` terminals spread over three relays, a talker on relay A
/// (which takes the group's lease with its first press); A is killed with
/// SIGKILL mid-burst.
async fn kill_the_owner_mid_burst(listeners: u32, watch: Duration) -> anyhow::Result<Outcome> {
    ptt_tests::init_logging();
    let nats = NatsServer::start().await?;
    let ids: Vec<u32> = (FIRST_LISTENER..FIRST_LISTENER + listeners).collect();
    let everybody: Vec<u32> = std::iter::once(TALKER).chain(ids.iter().copied()).collect();
    let directory = TestDirectory::new()
        .guards(everybody.iter().copied())
        .group(GROUP, everybody.iter().copied());
    let mut relays = start_relays(&nats, &directory, 3).await?;
    let addrs: Vec<SocketAddr> = relays.processes.iter().map(|p| p.addr).collect();
    let cert = relays.processes[0].cert.clone();

    let mut logins = tokio::task::JoinSet::new();
    for (n, &id) in ids.iter().enumerate() {
        let (addrs, cert) = (addrs.clone(), cert.clone());
        logins.spawn(async move { (n % 3, log_in(id, n % 3, &addrs, &cert).await) });
    }
    let mut terminals = Vec::new();
    while let Some(login) = logins.join_next().await {
        let (home, terminal) = login?;
        terminals.push((home, terminal?));
    }
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(None);
    let stop = CancellationToken::new();
    let followers: Vec<_> = terminals
        .iter()
        .map(|(home, terminal)| {
            let follower = tokio::spawn(follow(
                terminal.events(),
                first_tx.clone(),
                killed_rx.clone(),
                stop.clone(),
            ));
            (*home, follower)
        })
        .collect();
    let lease = tokio::spawn(watch_lease(
        nats.url(),
        "relay-a",
        killed_rx.clone(),
        stop.clone(),
    ));
    let talker = log_in(TALKER, 0, &addrs, &cert).await?;
    let talking = tokio::spawn(keep_talking(talker, stop.clone()));
    for _ in &ids {
        tokio::time::timeout(Duration::from_secs(10), first_rx.recv())
            .await
            .context("every listener hears the talker before the kill")?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    relays.processes[0].kill()?;
    killed_tx.send_replace(Some(Instant::now()));
    let give_up = stop.clone();
    let timer = tokio::spawn(async move {
        tokio::time::sleep(watch).await;
        give_up.cancel();
    });
    let mut moved = Vec::new();
    let mut stayed = Vec::new();
    for (home, follower) in followers {
        let back = follower.await?;
        if home == 0 {
            moved.push(back);
        } else {
            stayed.push(back);
        }
    }
    // The watcher ends once another relay holds the floor (it must, for
    // the talker to be heard again), or with the others.
    let lease = match tokio::time::timeout(Duration::from_secs(5), lease).await {
        Ok(watched) => watched??,
        Err(_) => LeaseMoved::default(),
    };
    stop.cancel();
    timer.abort();
    let _ = talking.await?;
    drop(terminals);
    Ok(Outcome {
        moved,
        stayed,
        lease,
    })
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn report(outcome: &Outcome) {
    let ms =
        |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis()));
    eprintln!(
        "floor lease: the dead owner's gone {} after the kill, another relay's {} after it",
        ms(outcome.lease.freed),
        ms(outcome.lease.taken)
    );
    type Step = fn(&Back) -> Option<Duration>;
    let steps: [(&str, Step); 3] = [
        ("kill → loss noticed", |b| b.noticed),
        ("kill → logged in to another relay", |b| b.reconnected),
        ("kill → talker heard again", |b| b.heard),
    ];
    for (who, backs) in [
        ("on the killed relay", &outcome.moved),
        ("on the others", &outcome.stayed),
    ] {
        for (step, pick) in steps {
            let mut values: Vec<Duration> = backs.iter().filter_map(pick).collect();
            values.sort();
            let Some(max) = values.last() else {
                eprintln!("listeners {who}: {step}: none of {}", backs.len());
                continue;
            };
            eprintln!(
                "listeners {who}: {step}: {}/{}, p50 {} ms, p99 {} ms, max {} ms",
                values.len(),
                backs.len(),
                percentile(&values, 50).as_millis(),
                percentile(&values, 99).as_millis(),
                max.as_millis()
            );
        }
    }
}

/// The owner of the group's floor dies mid-burst: every listener, on the
/// dead relay or not, hears the talker again well before any terminal's
/// idle timeout (30 s; the relays' 10 s), and those of the dead relay are
/// logged in to another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_killed_mid_burst_costs_its_terminals_seconds_not_their_idle_timeout()
-> anyhow::Result<()> {
    let outcome = kill_the_owner_mid_burst(30, Duration::from_secs(8)).await?;
    report(&outcome);
    for (n, back) in outcome.moved.iter().enumerate() {
        ensure!(
            back.noticed.is_some() && back.reconnected.is_some(),
            "listener {n} of the killed relay did not move: {back:?}"
        );
    }
    for (n, back) in outcome.moved.iter().chain(&outcome.stayed).enumerate() {
        let heard = back
            .heard
            .with_context(|| format!("listener {n} never heard the talker again: {back:?}"))?;
        ensure!(heard < Duration::from_secs(5), "listener {n}: {back:?}");
    }
    Ok(())
}

/// The failover figures with a fleet (`PTT_BENCH_TERMINALS`, default 900:
/// 300 on the relay that dies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn failover_bench() -> anyhow::Result<()> {
    let listeners = std::env::var("PTT_BENCH_TERMINALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(900);
    let outcome = kill_the_owner_mid_burst(listeners, Duration::from_secs(15)).await?;
    report(&outcome);
    Ok(())
}

/// Sends `frames` frames of `burst` in `GROUP` from `talker`, one every
/// 20 ms, until they are sent or its connection is gone.
async fn send_frames(talker: std::sync::Arc<ptt_tests::Client>, burst: u32, frames: u16) {
    for sequence in 0..frames {
        if talker
            .send_datagram(opus::datagram(GROUP, burst, sequence, 0))
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A relay dies while its terminal waits in the queue of a floor another
/// relay decides: once the dead relay has stopped announcing itself, the
/// owner lets its terminal go, so the floor passes to the next live one
/// and never to a terminal nobody can hear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_relays_queued_terminal_is_let_go_and_never_granted() -> anyhow::Result<()> {
    use ptt_proto::pb::server_message::Body;
    use ptt_tests::Client;
    use ptt_tests::client::{acked, granted};

    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=4).group(GROUP, 1..=4);
    let mut relays = start_relays(&nats, &directory, 2).await?;
    let (a, b) = (&relays.processes[0], &relays.processes[1]);
    let mut talker = Client::connect(a.addr, &a.cert, 1).await?;
    let mut next = Client::connect(a.addr, &a.cert, 2).await?;
    let mut doomed = Client::connect(b.addr, &b.cert, 3).await?;
    let burst = granted(&talker.press(GROUP).await?).context("A's talker")?;
    let queued = doomed.press(GROUP).await?;
    ensure!(
        matches!(&queued, Body::FloorQueued(q) if q.position == 1),
        "B's terminal: {queued:?}"
    );
    // A's talker talks on (or the floor would pass for media inactivity).
    let talker = std::sync::Arc::new(talker);
    let talking = tokio::spawn(send_frames(talker.clone(), burst, 1000));
    // Announcements carry B's presence to A before it dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relays.processes[1].kill()?;
    let killed = Instant::now();
    let behind = next.press(GROUP).await?;
    ensure!(
        matches!(&behind, Body::FloorQueued(q) if q.position == 2),
        "A's second terminal: {behind:?}"
    );
    // Well before the dead terminal's request would expire (10 s after it
    // was queued, 1.5 s before the kill): B is gone 3 s after its last
    // announcement, and the owner looks every second.
    let first = next
        .expect_within(Duration::from_secs(6), |message| {
            matches!(&message.body, Some(Body::QueuePositionUpdate(u)) if u.position == 1)
        })
        .await?;
    ensure!(
        first.is_some(),
        "the dead relay's terminal stayed ahead in the queue"
    );
    eprintln!(
        "B killed: its queued terminal let go after {:?}",
        killed.elapsed()
    );
    talking.abort();
    let _ = talking.await;
    let mut talker = std::sync::Arc::into_inner(talker).context("the talker is shared")?;
    ensure!(acked(&talker.release(GROUP).await?), "A's talker's release");
    next.expect_body(granted).await?;
    Ok(())
}

/// The owner dies while a terminal of another relay talks under its grant:
/// that relay stops forwarding the talker at the dead owner's own lease
/// deadline (which every piece of its news carried), before the floor can
/// have a new owner, so nobody ever hears two talkers of one group. A
/// terminal of a third relay then gets the floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_granted_by_a_dead_owner_is_cut_before_anyone_else_may_talk() -> anyhow::Result<()>
{
    use ptt_proto::pb::server_message::Body;
    use ptt_tests::Client;
    use ptt_tests::client::{acked, granted};

    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=4).group(GROUP, 1..=4);
    let mut relays = start_relays(&nats, &directory, 3).await?;
    let (a, b, c) = (
        &relays.processes[0],
        &relays.processes[1],
        &relays.processes[2],
    );
    // A takes the group's lease with its terminal's press, and keeps it.
    let mut first = Client::connect(a.addr, &a.cert, 1).await?;
    ensure!(granted(&first.press(GROUP).await?).is_some(), "A's press");
    ensure!(acked(&first.release(GROUP).await?), "A's release");
    let mut talker = Client::connect(b.addr, &b.cert, 2).await?;
    let listener = Client::connect(c.addr, &c.cert, 3).await?;
    let mut next = Client::connect(c.addr, &c.cert, 4).await?;
    let burst = granted(&talker.press(GROUP).await?).context("B's talker, granted by A")?;
    let talker = std::sync::Arc::new(talker);
    let talking = tokio::spawn(send_frames(talker.clone(), burst, 500));
    ensure!(
        listener.recv_voice(Duration::from_secs(5)).await.is_some(),
        "C does not hear B's talker"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    relays.processes[0].kill()?;
    let killed = Instant::now();
    let mut last_heard = killed;
    while let Some(frame) = listener.recv_voice(Duration::from_millis(800)).await {
        if frame.header.talker_id == 2 {
            last_heard = Instant::now();
        }
        ensure!(
            killed.elapsed() < Duration::from_secs(5),
            "B's talker is still heard"
        );
    }
    let cut = last_heard - killed;
    eprintln!("A killed: B's talker last heard on C {cut:?} after");
    // A's lease lets it decide at most ttl - margin (600 ms) after its last
    // renewal, which came at most ttl / 4 before the kill.
    ensure!(
        cut < Duration::from_millis(800),
        "B's talker heard {cut:?} after the kill"
    );
    // The floor is free for a terminal of C once A's lease has run out.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = next.press(GROUP).await?;
        if granted(&answer).is_some() {
            break;
        }
        ensure!(
            Instant::now() < until,
            "C's terminal never got the floor: {answer:?}"
        );
        if let Body::FloorQueued(_) = answer {
            ensure!(
                acked(&next.release(GROUP).await?),
                "withdrawing a queued press"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        listener
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none(),
        "B's talker heard on C after C's terminal got the floor"
    );
    talking.abort();
    Ok(())
}
