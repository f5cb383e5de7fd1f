//! The soak bench: half an hour of churn against a release `pttd`, sampling
//! what the relay holds, to show nothing grows without bound.
//!
//! The relay runs as its own process on the built-in demo district, so
//! RSS (`VmRSS`), open fds and threads are its own, read from `/proc`; the
//! sessions are its `pttd_terminals_connected` gauge (pttd exposes no tokio
//! task count: threads and sessions stand in for it). Against it, on
//! 127.0.0.1 only, 100 of the district's terminals (real QUIC clients of
//! `ptt-client`) churn until the end:
//!
//! - every 5 s three of them log out and log in again 1–10 s later;
//! - five lanes of talkers take turns with real Opus bursts of 1–5 s, in
//!   the squads', the compounds' and the patrols' groups, one lane pressing
//!   two at once so the second queues;
//! - a dispatcher sends a roll call every 30 s (the district, or four
//!   compounds), answered by up to eight targets, and every fourth time a
//!   2 s all-call;
//! - three patrol leads ride the trunk roads (`docs/tracks/`) ten times
//!   faster than real time, so compounds' guards join and leave;
//! - 1 % of all datagrams are garbage (random bytes on a logged-in
//!   connection), and every minute a garbage control message.
//!
//! It prints a row per sample (RSS, fds, threads, sessions, CPU, call-log
//! rows, recordings, forwarded frames) and at the end a verdict per
//! resource: its growth per hour from a least-squares slope over the second
//! half of the run, flagged when above a stated threshold; call-log rows
//! and recordings grow with the bursts and are reported per burst, with the
//! recordings' cap (`--recording-max-mib`, 8 MiB here) checked. It measures
//! and prints; it passes or fails nothing.
//!
//! ```text
//! cargo bench -p ptt-benches --bench soak                    # 30 min
//! SOAK_SECONDS=120 SOAK_SAMPLE_SECONDS=10 cargo bench -p ptt-benches --bench soak
//! SOAK_RELAY_ARGS="--record=false" cargo bench -p ptt-benches --bench soak
//! ```
//!
//! Also `SOAK_RECORDING_MAX_MIB` (0: the relay's default), `SOAK_SEED`.
//! The bench runs its terminals on one thread (at most one core) and has
//! cargo bring the release `pttd` up to date first (or set `PTTD`).

#[path = "soak/fleet.rs"]
mod fleet;
#[path = "soak/garbage.rs"]
mod garbage;
#[path = "soak/relay.rs"]
mod relay;
#[path = "soak/report.rs"]
mod report;
#[path = "soak/traffic.rs"]
mod traffic;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use fleet::{Counts, Fleet};
use relay::Relay;
use report::Sample;

/// Logins in flight at once at the start (the relay admits 8 per address).
const CONCURRENT_LOGINS: usize = 6;

/// The soak's knobs, from `SOAK_*` variables.
struct Settings {
    run: Duration,
    sample: Duration,
    churn_every: Duration,
    churn_per_round: usize,
    alert_every: Duration,
    garbage_control_every: Duration,
    patrol_speed: f64,
    recording_max_mib: u64,
    relay_args: Vec<String>,
    seed: u64,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Self {
        Self {
            run: Duration::from_secs(env("SOAK_SECONDS", 1800u64).clamp(20, 4 * 3600)),
            sample: Duration::from_secs(env("SOAK_SAMPLE_SECONDS", 60u64).clamp(1, 3600)),
            churn_every: Duration::from_secs(5),
            churn_per_round: 3,
            alert_every: Duration::from_secs(30),
            garbage_control_every: Duration::from_secs(60),
            patrol_speed: 10.0,
            recording_max_mib: env("SOAK_RECORDING_MAX_MIB", 8u64),
            relay_args: std::env::var("SOAK_RELAY_ARGS")
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            seed: env("SOAK_SEED", 1u64),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    ensure_pttd()?;
    // One thread: the terminals never take more than one core from the relay.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(soak(&settings))
}

async fn soak(settings: &Settings) -> anyhow::Result<()> {
    let mut args = settings.relay_args.clone();
    if settings.recording_max_mib > 0 {
        args.push(format!(
            "--recording-max-mib={}",
            settings.recording_max_mib
        ));
    }
    let relay = Relay::start(&args).await?;
    let started = Instant::now();
    println!(
        "soak: {} s of churn, a sample every {} s; pttd pid {} on {} (ops {}), args {args:?}",
        settings.run.as_secs(),
        settings.sample.as_secs(),
        relay.pid(),
        relay.addr,
        relay.ops
    );
    let lanes = traffic::lanes();
    let names: Vec<&str> = lanes.iter().map(|lane| lane.name).collect();
    println!("soak: 100 terminals of the demo district; talk lanes {names:?}");
    let fleet = Arc::new(Fleet::new(relay.addr, relay.cert.clone()));
    let mut samples = Vec::new();
    let sample = |label: String, t_s: Option<f64>, fleet: Arc<Fleet>| {
        let relay = &relay;
        async move {
            Sample {
                label,
                t_s,
                wall_s: started.elapsed().as_secs_f64(),
                probe: relay.probe().await,
                bursts: Counts::get(&fleet.counts.bursts),
                bench_cpu_s: relay::cpu_seconds("self").unwrap_or_default(),
            }
        }
    };
    report::header();
    samples.push(sample("idle".into(), None, fleet.clone()).await);
    report::row(&samples[0], None);

    login_all(&fleet).await?;
    let tracks = traffic::tracks()?;
    let speech = ptt_cli::load::speech_packets(settings.seed)?;

    let begin = Instant::now();
    let end = begin + settings.run;
    push(
        &mut samples,
        sample("0 s".into(), Some(0.0), fleet.clone()).await,
    );
    let mut tasks = JoinSet::new();
    tasks.spawn(traffic::churn(
        fleet.clone(),
        settings.churn_every,
        settings.churn_per_round,
        end,
        settings.seed,
    ));
    for (i, lane) in lanes.into_iter().enumerate() {
        tasks.spawn(traffic::talk_lane(
            fleet.clone(),
            lane,
            speech.clone(),
            end,
            settings.seed + 10 + i as u64,
        ));
    }
    tasks.spawn(traffic::dispatch(
        fleet.clone(),
        settings.alert_every,
        speech.clone(),
        end,
        settings.seed + 2,
    ));
    for (lead, track) in tracks {
        tasks.spawn(traffic::patrol(
            fleet.clone(),
            lead,
            track,
            settings.patrol_speed,
            end,
        ));
    }
    {
        let (fleet, server, cert) = (fleet.clone(), relay.addr, relay.cert.clone());
        let every = settings.garbage_control_every;
        let seed = settings.seed + 3;
        tasks.spawn(async move { garbage::run(fleet, server, &cert, every, end, seed).await });
    }

    let mut next = begin + settings.sample;
    while next < end {
        tokio::time::sleep_until(next).await;
        let t = begin.elapsed().as_secs_f64();
        push(
            &mut samples,
            sample(format!("{t:.0} s"), Some(t), fleet.clone()).await,
        );
        next += settings.sample;
    }
    // The end: every loop stops at `end`; those logged out come back.
    let stopped = tokio::time::timeout_at(end + Duration::from_secs(90), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if stopped.is_err() {
        println!("soak: some tasks did not stop within 90 s of the end; aborted");
        tasks.abort_all();
    }
    let t = begin.elapsed().as_secs_f64();
    push(
        &mut samples,
        sample("end".into(), Some(t), fleet.clone()).await,
    );

    fleet.logout_all().await;
    // The relay notices logouts at once; give it a bounded moment to close
    // every session.
    let deadline = Instant::now() + Duration::from_secs(15);
    while relay.probe().await.sessions > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    push(
        &mut samples,
        sample("logged out".into(), None, fleet.clone()).await,
    );

    summary(&fleet);
    report::verdict(
        &samples,
        settings.run.as_secs_f64(),
        (settings.recording_max_mib > 0).then_some(settings.recording_max_mib << 20),
    );
    idle_vs_logged_out(&samples);
    println!("pttd: {}", relay.log_tail(3));
    let status = relay.stop().await;
    println!("pttd stopped: {status}");
    Ok(())
}

/// Appends `sample` and prints its row.
fn push(samples: &mut Vec<Sample>, sample: Sample) {
    report::row(&sample, samples.last());
    samples.push(sample);
}

/// Logs the whole fleet in, a few at a time.
async fn login_all(fleet: &Arc<Fleet>) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(CONCURRENT_LOGINS));
    let mut logins = JoinSet::new();
    for id in traffic::terminals() {
        let (fleet, permits) = (fleet.clone(), permits.clone());
        logins.spawn(async move {
            let _permit = permits.acquire_owned().await;
            fleet.login(id).await
        });
    }
    while logins.join_next().await.is_some() {}
    println!("soak: {}", traffic::online(fleet));
    if fleet.online_count() < traffic::terminals().len() * 9 / 10 {
        bail!("fewer than 90 % of the terminals could log in");
    }
    Ok(())
}

/// What the fleet did.
fn summary(fleet: &Fleet) {
    let c = &fleet.counts;
    let g = Counts::get;
    println!();
    println!(
        "fleet: {} logins ({} failed), {} logouts; {} presses: {} bursts granted, {} released, {} denied, {} revoked, {} withdrawn, {} cut off; {} voice frames sent",
        g(&c.logins),
        g(&c.login_failures),
        g(&c.logouts),
        g(&c.presses),
        g(&c.bursts),
        g(&c.released),
        g(&c.denied),
        g(&c.revoked),
        g(&c.withdrawn),
        g(&c.cut),
        g(&c.frames_sent),
    );
    println!(
        "       {} roll calls ({} failed), {} answers ({} failed), {} all-calls; {} positions ({} failed)",
        g(&c.alerts),
        g(&c.alert_failures),
        g(&c.acks),
        g(&c.ack_failures),
        g(&c.all_calls),
        g(&c.locations),
        g(&c.location_failures),
    );
    println!(
        "       garbage: {} datagrams ({:.2} % of all sent), {} control messages ({} bad Hellos left open), garbage session closed by the relay {} times, {} failed logins",
        g(&c.garbage_datagrams),
        100.0 * g(&c.garbage_datagrams) as f64
            / (g(&c.garbage_datagrams) + g(&c.frames_sent)).max(1) as f64,
        g(&c.garbage_control),
        g(&c.garbage_hello_not_closed),
        g(&c.garbage_sessions_closed),
        g(&c.garbage_login_failures),
    );
}

/// The relay with nobody logged in, before and after the churn.
fn idle_vs_logged_out(samples: &[Sample]) {
    let (Some(idle), Some(after)) = (
        samples.iter().find(|s| s.label == "idle"),
        samples.iter().find(|s| s.label == "logged out"),
    ) else {
        return;
    };
    let (a, b) = (&idle.probe, &after.probe);
    println!(
        "idle before → all logged out after: RSS {:.1} → {:.1} MiB, fds {} → {}, threads {} → {}, sessions {} → {}",
        a.rss_kib as f64 / 1024.0,
        b.rss_kib as f64 / 1024.0,
        a.fds,
        b.fds,
        a.threads,
        b.threads,
        a.sessions,
        b.sessions,
    );
}

/// Builds the release `pttd` beside this bench (a no-op when it is up to
/// date), so the soak never measures a stale relay; `PTTD` overrides.
fn ensure_pttd() -> anyhow::Result<()> {
    if std::env::var_os("PTTD").is_some() {
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("building the release pttd for the soak …");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "ptt-relay", "--bin", "pttd"])
        .status()
        .context("running cargo build for pttd")?;
    if !status.success() {
        bail!("cargo build --release -p ptt-relay --bin pttd failed");
    }
    Ok(())
}
