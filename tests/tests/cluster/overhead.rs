//! What a forward across relays costs against a local one, measured: one
//! talker on relay A, its listeners on A (local) and then on B (remote,
//! through NATS), the same frames either way. Each relay is a `pttd`
//! process of its own, so its CPU time is its own (`/proc/<pid>/stat`); the
//! listeners stamp each frame's one-way delay from the talker's send time
//! on their own receive task (same machine, same clock).
//!
//! With a release `pttd` (the figures mean nothing in a debug build):
//! `cargo build --release -p ptt-relay --bin pttd && PTT_TESTS_PTTD=$PWD/target/release/pttd cargo test -p ptt-tests --test cluster -- --ignored --nocapture cross_relay_overhead`
//! (`PTT_BENCH_LISTENERS`, default 100; `PTT_BENCH_FRAMES`, default 1500:
//! 30 s of one talker).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ptt_tests::client::granted;
use ptt_tests::nats::NatsServer;
use ptt_tests::pttd::{PttdProcess, cpu_time};
use ptt_tests::{Client, TestDirectory, opus};

use crate::processes::start_relays;

const GROUP: u32 = 11;
const TALKER: u32 = 1;
const FIRST_LISTENER: u32 = 100;

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One run's figures.
struct Run {
    /// Datagrams the listeners received.
    delivered: u64,
    /// CPU time of each relay over the run.
    cpu: Vec<Duration>,
    /// CPU time of the NATS server over the run.
    nats_cpu: Duration,
    /// CPU time each relay and the NATS server spend a second with the
    /// floor taken and no voice (lease renewals, the gate's refreshes,
    /// timers): subtracted from the run's figures.
    idle_per_second: (Vec<Duration>, Duration),
    /// How long the voice was sent.
    sending: Duration,
    /// One-way delays, sorted, µs.
    one_way_us: Vec<u64>,
}

/// `listeners` listeners (ids from `first`) on relay `listen_on`, the
/// talker on relay 0; sends `frames` frames at 50 a second.
async fn run(
    relays: &[PttdProcess],
    nats: &NatsServer,
    listen_on: usize,
    (first, listeners): (u32, u32),
    frames: u16,
) -> anyhow::Result<Run> {
    let on = &relays[listen_on];
    let mut clients = Vec::new();
    for id in first..first + listeners {
        clients.push(Client::connect(on.addr, &on.cert, id).await?);
    }
    let mut talker = Client::connect(relays[0].addr, &relays[0].cert, TALKER).await?;
    let answer = talker.press(GROUP).await?;
    let burst = granted(&answer).with_context(|| format!("not granted: {answer:?}"))?;
    // Until every listener hears the talker (their relay hears the group).
    for sequence in 0.. {
        anyhow::ensure!(sequence < 250, "not every listener hears the talker");
        talker.send_datagram(opus::datagram(GROUP, burst, 0, unix_us()))?;
        let mut all = true;
        for client in &clients {
            let mut heard = false;
            while client.recv_voice(Duration::from_millis(20)).await.is_some() {
                heard = true;
            }
            all &= heard;
        }
        if all {
            break;
        }
    }
    let cpu_now = || -> (Vec<Duration>, Duration) {
        let relays = relays
            .iter()
            .map(|r| cpu_time(r.pid()).unwrap_or_default())
            .collect();
        (relays, nats.pid().and_then(cpu_time).unwrap_or_default())
    };
    let since = |before: &(Vec<Duration>, Duration)| -> (Vec<Duration>, Duration) {
        let now = cpu_now();
        let relays = now
            .0
            .iter()
            .zip(&before.0)
            .map(|(now, then)| now.saturating_sub(*then))
            .collect();
        (relays, now.1.saturating_sub(before.1))
    };
    let receivers: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let mut delays = Vec::new();
                while let Some(frame) = client.recv_voice(Duration::from_secs(2)).await {
                    if frame.header.sequence > 0 {
                        delays.push(unix_us().saturating_sub(frame.header.timestamp_us));
                    }
                }
                // Logged out, so the next run's relay serves nobody else.
                client.close().await;
                delays
            })
        })
        .collect();
    let before = cpu_now();
    let started = std::time::Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    for sequence in 1..=frames {
        ticks.tick().await;
        talker.send_datagram(opus::datagram(GROUP, burst, sequence, unix_us()))?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sending = started.elapsed();
    let (cpu, nats_cpu) = since(&before);
    // Then the floor held, nothing said (shorter than the listeners' wait
    // for more voice): what the relays spend anyway.
    let idle_window = Duration::from_millis(1500);
    let before_idle = cpu_now();
    tokio::time::sleep(idle_window).await;
    let idle = since(&before_idle);
    let idle_per_second = (
        idle.0
            .iter()
            .map(|c| c.div_f64(idle_window.as_secs_f64()))
            .collect(),
        idle.1.div_f64(idle_window.as_secs_f64()),
    );
    let mut one_way_us = Vec::new();
    for receiver in receivers {
        one_way_us.extend(receiver.await?);
    }
    one_way_us.sort_unstable();
    talker.release(GROUP).await?;
    talker.close().await;
    Ok(Run {
        delivered: one_way_us.len() as u64,
        cpu,
        nats_cpu,
        idle_per_second,
        sending,
        one_way_us,
    })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * p / 100.0).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0
}

fn report(label: &str, run: &Run, expected: u64) {
    // µs per datagram delivered, with what the process spends idle taken out.
    let per = |cpu: Duration, idle: Duration| {
        let spent = cpu.saturating_sub(idle.mul_f64(run.sending.as_secs_f64()));
        spent.as_secs_f64() * 1e6 / run.delivered.max(1) as f64
    };
    let (idle_relays, idle_nats) = &run.idle_per_second;
    let relays: Vec<f64> = run
        .cpu
        .iter()
        .zip(idle_relays)
        .map(|(cpu, idle)| per(*cpu, *idle))
        .collect();
    eprintln!(
        "{label}: {}/{expected} datagrams; one-way p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         CPU per datagram delivered (idle taken out): relays {:.2} µs ({}), nats-server {:.2} µs; \
         idle CPU a second (relays / nats-server): {} / {} ms",
        run.delivered,
        percentile(&run.one_way_us, 50.0),
        percentile(&run.one_way_us, 99.0),
        percentile(&run.one_way_us, 100.0),
        relays.iter().sum::<f64>(),
        relays
            .iter()
            .enumerate()
            .map(|(i, us)| format!("{} {us:.2} µs", char::from(b'A' + i as u8)))
            .collect::<Vec<_>>()
            .join(", "),
        per(run.nats_cpu, *idle_nats),
        idle_relays
            .iter()
            .map(|c| c.as_millis().to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        idle_nats.as_millis(),
    );
}

/// Local against remote forwards, in one run on one machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn cross_relay_overhead() -> anyhow::Result<()> {
    let listeners = env_or("PTT_BENCH_LISTENERS", 100);
    let frames = u16::try_from(env_or("PTT_BENCH_FRAMES", 1500)).unwrap_or(u16::MAX);
    let nats = NatsServer::start().await?;
    // Each run its own listeners: the first run's sessions may linger on A.
    let ids: Vec<u32> = std::iter::once(TALKER)
        .chain(FIRST_LISTENER..FIRST_LISTENER + 2 * listeners)
        .collect();
    let directory = TestDirectory::new()
        .guards(ids.iter().copied())
        .group(GROUP, ids.iter().copied());
    let relays = start_relays(&nats, &directory, 2).await?;
    let expected = u64::from(listeners) * u64::from(frames);
    let local = run(
        &relays.processes,
        &nats,
        0,
        (FIRST_LISTENER, listeners),
        frames,
    )
    .await?;
    let second = FIRST_LISTENER + listeners;
    let remote = run(&relays.processes, &nats, 1, (second, listeners), frames).await?;
    report("local  (talker and listeners on A)", &local, expected);
    report("remote (talker on A, listeners on B)", &remote, expected);
    Ok(())
}
