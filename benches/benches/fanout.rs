//! The fan-out scenario bench: the relay beside raw UDP, in one run.
//!
//! For each scenario it first runs `ptt load` against its own `pttd`
//! (real QUIC connections, real Opus frames, talkers through the real
//! floor), then sends the same datagrams over plain UDP to the same number of
//! loopback sockets at the same rate: the physical limit of this machine for
//! that traffic. It prints forwards per second, CPU per forward and the
//! ratio relay / raw UDP, the one-way p99 the listeners saw (all frames,
//! and `sock p99`: the frames stamped by the kernel at the listener's
//! socket, the relay's path without the generator's own delay), the relay's
//! own share of it (its forward-latency histogram) and the generator's CPU.
//! Raw UDP pays only the `sendto` per listener; the relay pays that plus
//! QUIC (encryption, acknowledgements, pacing) and the floor check, so the
//! ratio is the price of QUIC and of our code.
//!
//! The machines are shared and noisy: compare the ratios of one run, not
//! absolute rates across runs. Nothing here passes or fails on time.
//!
//! ```text
//! cargo bench -p ptt-benches --bench fanout               # all scenarios, 10 s each
//! FANOUT_SECONDS=5 cargo bench -p ptt-benches --bench fanout -- 1000
//! FANOUT_RELAY_ARGS="--record=false" cargo bench -p ptt-benches --bench fanout
//! FANOUT_SETUPS=1pin,Nfree,mumble cargo bench -p ptt-benches --bench fanout -- 1000
//! FANOUT_SETUPS=Nfree,field,cell cargo bench -p ptt-benches --bench fanout -- 100
//! ```
//!
//! Each scenario runs the relay in three setups (`FANOUT_SETUPS` picks
//! some): `1pin`, one shard pinned to a core; `Npin`, one shard per core,
//! each pinned; `Nfree`, one shard per core, placed by the kernel. The
//! column `wire p99` is the relay's own latency to the kernel
//! (`pttd_wire_latency_seconds`), `own p99` its forward latency (to quinn).
//!
//! Two more setups put a field-like link between the terminals and the
//! relay (one shard per core, unpinned): `field`, 30 ms RTT, 5 ms of
//! jitter and 1 % loss each way, and `cell`, 100 ms, 20 ms and 1 %. The
//! kernel here has no `netem`, so the link is `ptt load --link`'s proxy on
//! loopback (the `ptt-link` crate): it costs CPU on the same cores, so it
//! runs only for scenarios of up to 1,000 listeners, and its rows' latency
//! and loss include the link's. `acks/dg` is the ACK frames the listeners
//! sent per voice datagram: what a forward costs the relay in
//! acknowledgements, which depends on the RTT (quinn asks for an ACK at
//! least once per RTT, however long the relay asks it to wait).
//!
//! Where the lost frames went: `relay drop` is what the relay dropped itself
//! (listeners' queues, between shards, refused sends), `sock drop` the
//! packets the kernel dropped at the generator's own sockets; the rest of
//! `loss %` was lost on the link or still in flight at the end.
//!
//! The `mumble` row is Debian's mumble-server 1.3 (`murmurd`) in the same
//! scenario, in the same run: one channel per group, one talker each, the
//! same frames at the same rate, real Mumble clients (TLS log-in, UDP voice
//! under OCB2-AES128; `ptt_benches::mumble`). The server is pinned to CPU 0
//! as in `1pin`; its `sock p99` is stamped by the kernel at the listener's
//! socket as the relay's is. The column `÷ mumble` is each relay row's CPU
//! per forward over mumble-server's. The generator is not pinned: it also
//! runs beside the pinned shard of `1pin` (`taskset -c 1 cargo bench …`
//! keeps it off CPU 0, but then it saturates its one core and its listeners
//! ACK less, which lightens the relay's load). Without mumble-server installed
//! (`apt-get install mumble-server`, or `MUMBLE_SERVER=path`) the row is
//! left out and the bench says so.
//!
//! The bench runs the release `pttd` beside it and has cargo bring it up to
//! date first (or set `PTTD` to a binary).

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use ptt_benches::mumble::{self, MumbleLoad, MumbleRun};
use ptt_cli::load::{LinkProfile, LoadArgs, Report};
use ptt_proto::voice::{self, Flags, Kind, VoiceHeader};

/// How the relay is run (its sharding and pinning) and how the terminals
/// reach it.
struct Setup {
    /// What the path column says.
    name: &'static str,
    /// The `pttd` options.
    args: &'static [&'static str],
    /// A field-like link between the terminals and the relay (`ptt load
    /// --link`), or loopback.
    link: Option<LinkProfile>,
}

/// One shard per core, placed by the kernel: the default deployment.
const NFREE: &[&str] = &["--shards=0", "--pin-shards=false"];

const SETUPS: [Setup; 5] = [
    Setup {
        name: "1pin",
        args: &["--shards=1", "--pin-shards=true"],
        link: None,
    },
    Setup {
        name: "Npin",
        args: &["--shards=0", "--pin-shards=true"],
        link: None,
    },
    Setup {
        name: "Nfree",
        args: NFREE,
        link: None,
    },
    Setup {
        name: "field",
        args: NFREE,
        link: Some(LinkProfile::FIELD),
    },
    Setup {
        name: "cell",
        args: NFREE,
        link: Some(LinkProfile::CELLULAR),
    },
];

/// One line of the table: terminals in groups, one talker per group.
struct Scenario {
    /// What the line is called (and what a filter argument matches).
    name: &'static str,
    terminals: usize,
    groups: usize,
    /// Frames per second per talker.
    fps: u32,
    /// One dispatcher all-calls everyone instead of one talker per group.
    all_call: bool,
    /// Also run through the field-like links (`field`, `cell`): the link
    /// proxy forwards every packet on this machine's cores too, so only
    /// where it stays well below the relay's load.
    field: bool,
    /// Also run against mumble-server (talkgroups, not all-calls; and not
    /// 10,000 users, whose log-ins the server announces to each other).
    mumble: bool,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "100 listeners",
        terminals: 102,
        groups: 1,
        fps: FPS,
        all_call: false,
        field: true,
        mumble: true,
    },
    // One talker heard by 1,000 listeners in one group (one Mumble
    // channel): where the relay was first measured against mumble-server.
    Scenario {
        name: "1000 listeners in one group",
        terminals: 1_002,
        groups: 1,
        fps: FPS,
        all_call: false,
        field: false,
        mumble: true,
    },
    Scenario {
        name: "1000 listeners (10 groups x 100)",
        terminals: 1_012,
        groups: 10,
        fps: FPS,
        all_call: false,
        field: true,
        mumble: true,
    },
    Scenario {
        name: "saturation (3000 listeners, 30 groups)",
        terminals: 3_040,
        groups: 30,
        fps: FPS,
        all_call: false,
        field: false,
        mumble: false,
    },
    // Mostly idle: what a connected terminal costs in memory. One frame a
    // second per talker keeps the floor and fan-out in use without load.
    Scenario {
        name: "idle 10000 terminals (100 groups, 1 fps)",
        terminals: 10_000,
        groups: 100,
        fps: 1,
        all_call: false,
        field: false,
        mumble: false,
    },
    // A dispatcher's all-call to 1,000 terminals: one-way p99/max is how
    // long a frame takes to reach the last of them; compare `fan ms`.
    Scenario {
        name: "all-call to 1000 terminals",
        terminals: 1_001,
        groups: 10,
        fps: FPS,
        all_call: true,
        field: false,
        mumble: false,
    },
];

/// Voice frames per second per talker.
const FPS: u32 = 50;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("FANOUT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .clamp(2, 60);
    let relay_args: Vec<String> = std::env::var("FANOUT_RELAY_ARGS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let chosen = std::env::var("FANOUT_SETUPS").ok();
    let is_chosen = |name: &str| {
        chosen
            .as_deref()
            .is_none_or(|names| names.split(',').any(|n| n.trim() == name))
    };
    let setups: Vec<&Setup> = SETUPS.iter().filter(|s| is_chosen(s.name)).collect();
    if setups.is_empty() {
        bail!(
            "FANOUT_SETUPS names none of the relay's setups 1pin, Npin, Nfree, field, cell (mumble runs beside them)"
        );
    }
    let mumble_server = if is_chosen("mumble") {
        let binary = mumble::server::binary();
        if binary.is_none() {
            println!(
                "mumble-server is not installed (apt-get install mumble-server, or set MUMBLE_SERVER): no mumble rows"
            );
        }
        binary
    } else {
        None
    };
    // cargo bench passes `--bench`; any other argument filters scenarios.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    ensure_pttd()?;

    let packets = ptt_cli::load::speech_packets(1)?;
    let datagrams = voice_datagrams(&packets)?;
    let runtime = tokio::runtime::Runtime::new()?;

    println!("fan-out bench: {seconds} s per run, {FPS} fps per talker, relay args {relay_args:?}");
    println!(
        "{:<40} {:>6} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "scenario",
        "path",
        "forwards",
        "fwd/s",
        "loss %",
        "cpu s",
        "µs/fwd",
        "ratio",
        "p99 ms",
        "sock p99",
        "own p99",
        "wire p99",
        "fan ms",
        "gen cpu",
        "acks/dg",
        "relay drop",
        "sock drop",
        "÷ mumble"
    );
    for scenario in &SCENARIOS {
        if !filters.is_empty() && !filters.iter().any(|f| scenario.name.contains(f.as_str())) {
            continue;
        }
        let mut reports = Vec::new();
        for setup in &setups {
            if setup.link.is_some() && !scenario.field {
                continue;
            }
            let mut args = relay_args.clone();
            args.extend(setup.args.iter().map(|a| (*a).to_owned()));
            let load = LoadArgs {
                terminals: scenario.terminals,
                groups: scenario.groups,
                duration: seconds,
                fps: scenario.fps,
                all_call: scenario.all_call,
                link: setup.link,
                quiet: true,
                relay_args: args,
                ..LoadArgs::default()
            };
            let report = runtime
                .block_on(ptt_cli::load::measure(&load))
                .with_context(|| format!("ptt load for {} ({})", scenario.name, setup.name))?;
            reports.push((setup.name, report));
        }
        let Some((_, first)) = reports.first() else {
            continue;
        };
        let fan_out = if first.frames_sent == 0 {
            0
        } else {
            (first.frames_expected as f64 / first.frames_sent as f64).round() as usize
        };
        let raw = raw_udp(
            &datagrams,
            first.talkers,
            fan_out,
            Pace::Frames(scenario.fps),
            Duration::from_secs(seconds),
        )?;
        let mumble = match &mumble_server {
            Some(binary) if scenario.mumble => {
                let load = MumbleLoad {
                    channels: first.talkers,
                    listeners_per_channel: fan_out,
                    fps: scenario.fps,
                    duration: Duration::from_secs(seconds),
                    pinned: true,
                };
                Some(
                    mumble::run(binary, &load, &packets)
                        .with_context(|| format!("mumble-server for {}", scenario.name))?,
                )
            }
            _ => None,
        };
        for (index, (setup, report)) in reports.iter().enumerate() {
            let name = if index == 0 { scenario.name } else { "" };
            print_relay_row(name, setup, report, &raw, mumble.as_ref());
            if let Some(kib) = report.relay_kib_per_idle_terminal() {
                println!(
                    "{:<40} relay RSS {} KiB at start, {} KiB with {} terminals logged in: {kib:.1} KiB per idle terminal",
                    "",
                    report.relay_rss_start_kib.unwrap_or_default(),
                    report.relay_rss_logged_in_kib.unwrap_or_default(),
                    report.listeners,
                );
            }
        }
        if let Some(mumble) = &mumble {
            print_mumble_row(mumble, &raw);
        }
        print_udp_row(&raw);
    }
    if filters.is_empty() || filters.iter().any(|f| "raw".contains(f.as_str())) {
        // The machine's ceiling: one sender, as fast as it goes.
        let raw = raw_udp(&datagrams, 1, 1_000, Pace::Flat, Duration::from_secs(2))?;
        println!(
            "{:<40} {:>6} {:>10} {:>10.0} {:>9.3} {:>9.2} {:>9.2}",
            "raw UDP flat out to 1000 sockets",
            "udp",
            raw.sent,
            raw.sent as f64 / raw.wall.as_secs_f64(),
            raw.loss_percent(),
            raw.cpu_s,
            raw.cpu_per_packet_us(),
        );
    }
    Ok(())
}

/// The relay's row of a scenario in one setup, its CPU per forward beside
/// raw UDP's.
fn print_relay_row(
    name: &str,
    setup: &str,
    report: &Report,
    raw: &RawRun,
    mumble: Option<&MumbleRun>,
) {
    let forwards = report.frames_received;
    let relay_cpu = report.relay_cpu_seconds.unwrap_or(f64::NAN);
    let relay_us = relay_cpu * 1e6 / forwards.max(1) as f64;
    let p99 = |p: &Option<ptt_cli::load::Percentiles>| p.as_ref().map_or(f64::NAN, |p| p.p99);
    let versus_mumble = mumble.map_or_else(
        || "-".to_owned(),
        |m| format!("{:.2}", relay_us / m.cpu_per_forward_us()),
    );
    println!(
        "{:<40} {:>6} {:>10} {:>10.0} {:>9.3} {:>9.2} {:>9.2} {:>7.2} {:>8.2} {:>8.2} {:>8.3} {:>8.3} {:>8} {:>8.2} {:>8.3} {:>9} {:>9} {:>8}",
        name,
        setup,
        forwards,
        forwards as f64 / report.duration_s,
        report.loss_ratio * 100.0,
        relay_cpu,
        relay_us,
        relay_us / raw.cpu_per_packet_us(),
        p99(&report.one_way_ms),
        p99(&report.one_way_socket_ms),
        p99(&report.relay_forward_ms),
        p99(&report.relay_wire_ms),
        "",
        report.load_cpu_seconds.unwrap_or(f64::NAN),
        report.listener_acks_per_datagram.unwrap_or(f64::NAN),
        relay_drops(report).map_or_else(|| "-".to_owned(), |n| n.to_string()),
        report.listener_socket_drops,
        versus_mumble,
    );
}

/// mumble-server's row: the same scenario, its CPU per forward beside raw
/// UDP's. Its one-way latency is only the socket-stamped one.
fn print_mumble_row(run: &MumbleRun, raw: &RawRun) {
    let us = run.cpu_per_forward_us();
    let p99 = run.one_way_socket_ms.map_or(f64::NAN, |p| p.p99);
    println!(
        "{:<40} {:>6} {:>10} {:>10.0} {:>9.3} {:>9.2} {:>9.2} {:>7.2} {:>8} {:>8.2} {:>8} {:>8} {:>8} {:>8.2} {:>8} {:>9} {:>9} {:>8}",
        if run.bad_packets > 0 {
            format!("({} packets did not decrypt or parse)", run.bad_packets)
        } else {
            String::new()
        },
        "mumble",
        run.frames_received,
        run.frames_received as f64 / run.wall.as_secs_f64(),
        run.loss_percent(),
        run.server_cpu_s,
        us,
        us / raw.cpu_per_packet_us(),
        "",
        p99,
        "",
        "",
        "",
        run.generator_cpu_s,
        "",
        "",
        run.socket_drops,
        "1.00",
    );
}

/// Frames the relay lost itself: in listeners' queues, between shards and
/// refused by a connection (scraped from its `/metrics` after the run).
fn relay_drops(report: &Report) -> Option<u64> {
    Some(
        report.relay_listener_queue_dropped?
            + report.relay_handover_dropped?
            + report.relay_send_failed?,
    )
}

/// Raw UDP's row: the same datagrams to as many sockets at the same rate.
fn print_udp_row(raw: &RawRun) {
    println!(
        "{:<40} {:>6} {:>10} {:>10.0} {:>9.3} {:>9.2} {:>9.2} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8.2}",
        "",
        "udp",
        raw.sent,
        raw.sent as f64 / raw.wall.as_secs_f64(),
        raw.loss_percent(),
        raw.cpu_s,
        raw.cpu_per_packet_us(),
        "1.00",
        "",
        "",
        "",
        "",
        raw.fan_out_p99.as_secs_f64() * 1e3,
    );
}

/// The speech packets as client voice datagrams (header + Opus).
fn voice_datagrams(packets: &[Bytes]) -> anyhow::Result<Vec<Bytes>> {
    packets
        .iter()
        .enumerate()
        .map(|(i, opus)| {
            let header = VoiceHeader {
                kind: Kind::Voice,
                flags: Flags::default(),
                group_id: 2,
                talker_id: 7,
                burst_id: 1,
                sequence: i as u16,
                timestamp_us: 0,
            };
            let mut buf = BytesMut::new();
            voice::encode(&header, opus, &mut buf)?;
            Ok(buf.freeze())
        })
        .collect()
}

/// How the raw sender paces itself.
#[derive(Clone, Copy)]
enum Pace {
    /// Every talker sends one frame to its listeners this many times a
    /// second, as the relay's talkers do.
    Frames(u32),
    /// As fast as one thread can.
    Flat,
}

/// What one raw UDP run did.
struct RawRun {
    sent: u64,
    received: u64,
    /// CPU time of the sending thread.
    cpu_s: f64,
    wall: Duration,
    /// 99th percentile of the time one talker's frame takes to reach its
    /// last listener's socket buffer (first send to last send).
    fan_out_p99: Duration,
}

impl RawRun {
    fn cpu_per_packet_us(&self) -> f64 {
        self.cpu_s * 1e6 / self.sent.max(1) as f64
    }

    fn loss_percent(&self) -> f64 {
        100.0 * (1.0 - self.received as f64 / self.sent.max(1) as f64).max(0.0)
    }
}

/// Sends `datagrams` round-robin from one socket: each of `talkers` to its
/// own `fan_out` loopback sockets, drained by another thread (as the relay's
/// listeners read theirs). Bounded by `duration`.
fn raw_udp(
    datagrams: &[Bytes],
    talkers: usize,
    fan_out: usize,
    pace: Pace,
    duration: Duration,
) -> anyhow::Result<RawRun> {
    if talkers == 0 || fan_out == 0 {
        bail!("raw UDP needs talkers and listeners (got {talkers} x {fan_out})");
    }
    let receivers: Vec<UdpSocket> = (0..talkers * fan_out)
        .map(|_| {
            let socket = UdpSocket::bind(("127.0.0.1", 0))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .collect::<std::io::Result<_>>()
        .context("binding the raw UDP listeners (raise `ulimit -n`?)")?;
    let addrs: Vec<SocketAddr> = receivers
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<std::io::Result<_>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let drain = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || drain_all(&receivers, &stop, &received))
    };

    let sender = UdpSocket::bind(("127.0.0.1", 0))?;
    let cpu_start = thread_cpu()?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut fan_out_times = Vec::new();
    let mut tick = 0u64;
    while start.elapsed() < duration {
        let datagram = &datagrams[tick as usize % datagrams.len()];
        for talker in 0..talkers {
            let first = Instant::now();
            for addr in &addrs[talker * fan_out..(talker + 1) * fan_out] {
                if sender.send_to(datagram, addr).is_ok() {
                    sent += 1;
                }
            }
            fan_out_times.push(first.elapsed());
        }
        tick += 1;
        if let Pace::Frames(fps) = pace {
            let next = start + Duration::from_secs(tick) / fps;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    let wall = start.elapsed();
    let cpu_s = thread_cpu()? - cpu_start;
    // Let the drain catch up, then stop it.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    fan_out_times.sort_unstable();
    let p99 = fan_out_times
        .get(fan_out_times.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    Ok(RawRun {
        sent,
        received: received.load(Ordering::Relaxed),
        cpu_s,
        wall,
        fan_out_p99: p99,
    })
}

/// Reads every socket until `stop`, counting datagrams.
fn drain_all(sockets: &[UdpSocket], stop: &AtomicBool, received: &AtomicU64) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let mut got = 0u64;
        for socket in sockets {
            while socket.recv(&mut buf).is_ok() {
                got += 1;
            }
        }
        received.fetch_add(got, Ordering::Relaxed);
        if got == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

/// CPU seconds this thread has run, from the scheduler's own accounting
/// (`/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu() -> anyhow::Result<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .context("unexpected /proc/thread-self/schedstat")?;
    Ok(ns as f64 / 1e9)
}

/// Builds the release `pttd` beside this bench (a no-op when it is up to
/// date), so the bench never measures a stale relay; `PTTD` overrides.
fn ensure_pttd() -> anyhow::Result<()> {
    if std::env::var_os("PTTD").is_some() {
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("building the release pttd for the bench …");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "ptt-relay", "--bin", "pttd"])
        .status()
        .context("running cargo build for pttd")?;
    if !status.success() {
        bail!("cargo build --release -p ptt-relay --bin pttd failed");
    }
    Ok(())
}
