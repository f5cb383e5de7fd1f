//! `ptt load`: the load generator. It logs in many simulated terminals over
//! real QUIC, lets talkers take turns through the real floor in each group
//! with real Opus frames, and measures what MCPTT measures: access time,
//! one-way and (approximate) mouth-to-ear latency, late-entry time, and
//! loss, duplicates and reordering. Without `--server` it starts its own
//! `pttd` and also reports the relay's CPU time and peak memory.
//!
//! It measures the relay, not itself: the listeners are spread over receive
//! lanes (threads with their own runtimes, `lanes`), each on a socket of its
//! own that the kernel stamps arrivals on (`stamp`), and the talkers have a
//! thread of their own; the CPU of each is reported beside the relay's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;

mod cpu;
mod lanes;
mod link;
mod listener;
mod probe;
mod relay;
mod scenario;
mod scrape;
mod sim;
mod stamp;
mod stats;
mod target;
mod tasks;
mod totals;

pub use link::{LinkError, LinkProfile};
pub use relay::{clock_ticks, cpu_seconds, thread_cpu_seconds};
pub use scenario::speech_packets;
pub use stamp::{Stamped, recv_stamped, stamp_arrivals, unix_us};
pub use stats::{Latency, Percentiles, Report};

/// Longest run `--duration` allows, seconds.
pub const MAX_DURATION_S: u64 = 600;

/// Options of `ptt load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Relay to load (with `--ca` and `--secrets`); without all three a
    /// `pttd` is started on 127.0.0.1 for the run.
    #[arg(long, value_name = "ADDR", requires_all = ["ca", "secrets"])]
    pub server: Option<SocketAddr>,
    /// The relay's certificate (PEM), pinned.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub ca: Option<PathBuf>,
    /// Secrets file of the relay's directory: `<id> <secret>` per line
    /// (what `pttd gen-directory --secrets` writes).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub secrets: Option<PathBuf>,
    /// Simulated terminals (a few of them are kept back for late entry).
    #[arg(long, default_value_t = 100)]
    pub terminals: usize,
    /// Groups of the generated directory (group 1 holds everyone; nobody
    /// talks in it unless it is the only one).
    #[arg(long, default_value_t = 10)]
    pub groups: usize,
    /// Talkers taking turns in each group.
    #[arg(long, default_value_t = 1)]
    pub talkers_per_group: usize,
    /// Seconds of talking (at most 600).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Voice frames per second per talker.
    #[arg(long, default_value_t = 50)]
    pub fps: u32,
    /// Seed of the generated directory and the synthetic speech.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Every terminal carries voice on QUIC streams, one per burst
    /// (proto/voice.md §4), instead of datagrams: what the fallback costs.
    #[arg(long)]
    pub voice_streams: bool,
    /// Receive lanes: threads over which the listeners are spread, each with
    /// its own runtime and UDP sockets (0: one per core). The talkers have
    /// a thread of their own besides.
    #[arg(long, default_value_t = 0)]
    pub lanes: usize,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// One dispatcher all-calls the whole district (group 0, broadcast) in
    /// bursts while every other terminal listens: how long a frame takes to
    /// reach the last of them (one-way p99/max).
    #[arg(long)]
    pub all_call: bool,
    /// Put a field-like network between the terminals and the relay: a
    /// UDP proxy on loopback that delays, jitters and loses every packet
    /// both ways. `field` (30 ms RTT, 5 ms jitter, 1 % loss), `cellular`
    /// (100 ms, 20 ms, 1 %), or `rtt=30ms,jitter=5ms,loss=1%`. Latencies
    /// and loss then include the link's.
    #[arg(long, value_name = "LINK")]
    pub link: Option<LinkProfile>,
    /// Each terminal's keep-alive interval, in milliseconds (default: the
    /// client library's, 1,000): what idle terminals cost the relay, and
    /// what a longer interval saves.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=15_000))]
    pub keep_alive_ms: Option<u64>,
    /// An extra argument for the relay `ptt load` starts itself (repeat it;
    /// e.g. `--relay-arg=--record=false` to measure without recordings).
    #[arg(
        long = "relay-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        conflicts_with = "server"
    )]
    pub relay_args: Vec<String>,
}

impl Default for LoadArgs {
    fn default() -> Self {
        Self {
            server: None,
            ca: None,
            secrets: None,
            terminals: 100,
            groups: 10,
            talkers_per_group: 1,
            duration: 10,
            fps: 50,
            seed: 1,
            lanes: 0,
            voice_streams: false,
            report: None,
            quiet: false,
            all_call: false,
            link: None,
            keep_alive_ms: None,
            relay_args: Vec::new(),
        }
    }
}

/// Runs `ptt load`: prints the table, writes `--report`.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    print!("{}", report.table());
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(())
}

/// Runs the load and returns the report without printing it.
pub async fn measure(args: &LoadArgs) -> anyhow::Result<Report> {
    if args.terminals < 2 {
        anyhow::bail!("--terminals must be at least 2");
    }
    if args.groups == 0 {
        anyhow::bail!("--groups must be at least 1");
    }
    if !(1..=1000).contains(&args.fps) {
        anyhow::bail!("--fps must be within 1..=1000");
    }
    let duration_s = args.duration.clamp(1, MAX_DURATION_S);
    let scenario = scenario::Scenario {
        talkers_per_group: args.talkers_per_group.max(1),
        duration: Duration::from_secs(duration_s),
        fps: args.fps,
        seed: args.seed,
        progress: !args.quiet,
        all_call: args.all_call,
        relay_pid: None,
    };

    let (target, own) = match (&args.server, &args.ca, &args.secrets) {
        (Some(addr), Some(ca), Some(secrets)) => {
            let text = std::fs::read_to_string(secrets)
                .with_context(|| format!("cannot read {}", secrets.display()))?;
            let target = target::Target {
                addr: *addr,
                cert: ca.clone(),
                secrets: target::parse_secrets(&text)?,
                voice_streams: args.voice_streams,
                keep_alive: args.keep_alive_ms.map(Duration::from_millis),
            };
            (target, None)
        }
        (None, None, None) => {
            let own =
                relay::OwnRelay::start(args.terminals, args.groups, args.seed, &args.relay_args)
                    .await?;
            let target = target::Target {
                addr: own.addr,
                cert: own.cert.clone(),
                secrets: target::parse_secrets(&own.secrets)?,
                voice_streams: args.voice_streams,
                keep_alive: args.keep_alive_ms.map(Duration::from_millis),
            };
            (target, Some(own))
        }
        _ => anyhow::bail!("give all of --server, --ca and --secrets, or none"),
    };

    let relay_addr = target.addr;
    // The proxy runs on this runtime; the terminals on their own threads.
    let proxy = match args.link {
        Some(link) => Some(
            link.start(target.addr, args.seed)
                .await
                .context("cannot start the --link proxy")?,
        ),
        None => None,
    };
    let target = match &proxy {
        Some(proxy) => target::Target {
            addr: proxy.addr(),
            ..target
        },
        None => target,
    };
    let ticks = relay::clock_ticks();
    let rss_start = own.as_ref().and_then(|r| relay::rss_kib(r.pid()));
    let scenario = scenario::Scenario {
        relay_pid: own.as_ref().map(relay::OwnRelay::pid),
        ..scenario
    };
    let lanes = match args.lanes {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        lanes => lanes,
    };
    let result = sim::run(&target, args.terminals, lanes, scenario).await;
    let relay_latency = match &own {
        Some(r) => scrape::relay_latency(r.ops).await,
        None => scrape::RelayLatency::default(),
    };
    let (cpu_total, peak_rss) = match &own {
        Some(r) => (
            relay::cpu_seconds(r.pid(), ticks),
            relay::peak_rss_kib(r.pid()),
        ),
        None => (None, None),
    };
    if let Some(own) = own {
        own.stop().await;
    }
    let outcome = result?;
    // The CPU of the talking phase: log-ins (argon2) happen before it.
    let cpu_talking = outcome.cpu_talk_phase;
    let t = &outcome.totals;
    let hists = t.hists.lock().unwrap_or_else(|e| e.into_inner());
    let expected = t.frames_expected.load(Ordering::Relaxed);
    let received = t.frames_received.load(Ordering::Relaxed);
    let loss_ratio = if expected == 0 {
        0.0
    } else {
        (1.0 - received as f64 / expected as f64).max(0.0)
    };
    Ok(Report {
        server: relay_addr.to_string(),
        link: args.link.map(|link| link.to_string()),
        voice_streams: args.voice_streams,
        own_relay: cpu_total.is_some(),
        terminals: outcome.listeners + outcome.late_terminals,
        listeners: outcome.listeners,
        late_entry_terminals: outcome.late_terminals,
        groups: outcome.groups,
        talk_groups: outcome.talk_groups,
        talkers: outcome.talkers,
        duration_s: duration_s as f64,
        fps: args.fps,
        login_retries: t.login_retries.load(Ordering::Relaxed),
        bursts: t.bursts.load(Ordering::Relaxed),
        floor_failures: t.floor_failures.load(Ordering::Relaxed),
        frames_sent: t.frames_sent.load(Ordering::Relaxed),
        frames_expected: expected,
        frames_received: received,
        loss_ratio,
        duplicates: t.duplicates.load(Ordering::Relaxed),
        reordered: t.reordered.load(Ordering::Relaxed),
        lagged_events: t.lagged.load(Ordering::Relaxed),
        listener_socket_drops: t.listener_socket_drops.load(Ordering::Relaxed),
        access_ms: hists.access.summary(),
        one_way_ms: hists.one_way.summary(),
        one_way_socket_ms: hists.one_way_socket.summary(),
        relay_forward_ms: relay_latency.forward,
        relay_wire_ms: relay_latency.wire,
        relay_listener_queue_dropped: relay_latency.listener_queue_dropped,
        relay_handover_dropped: relay_latency.handover_dropped,
        relay_send_failed: relay_latency.send_failed,
        mouth_to_ear_ms: hists.mouth_to_ear.summary(),
        mouth_to_ear_approx_ms: hists.mouth_to_ear_approx.summary(),
        decode_errors: t.decode_errors.load(Ordering::Relaxed),
        late_entry_ms: hists.late_entry.summary(),
        late_entries: t.late_entries.load(Ordering::Relaxed),
        late_entry_failures: t.late_failures.load(Ordering::Relaxed),
        listener_acks_per_datagram: {
            let datagrams = t.listener_datagrams.load(Ordering::Relaxed);
            (datagrams > 0)
                .then(|| t.listener_acks.load(Ordering::Relaxed) as f64 / datagrams as f64)
        },
        relay_cpu_seconds: cpu_talking,
        relay_cpu_seconds_total: cpu_total,
        relay_peak_rss_kib: peak_rss,
        relay_rss_start_kib: rss_start,
        relay_rss_logged_in_kib: outcome.relay_rss_logged_in,
        load_cpu_seconds: outcome.load_cpu,
        load_talker_cpu_seconds: outcome.talker_cpu.map(|c| c.seconds),
        receive_lanes: lanes,
        load_receive_cpu_seconds: outcome
            .lane_cpu
            .as_ref()
            .map(|lanes| lanes.iter().map(|c| c.seconds).sum()),
        receive_lane_busy_max: outcome
            .lane_cpu
            .as_ref()
            .map(|lanes| lanes.iter().map(|c| c.busy()).fold(0.0, f64::max)),
    })
}
