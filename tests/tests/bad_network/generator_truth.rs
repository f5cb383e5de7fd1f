//! Ground truth for the load generator: `ptt load` runs through the lossy
//! proxy with a known loss, delay, jitter and reordering on the relay's
//! packets to the listeners, and what it reports must match what was
//! injected, within margins stated from the statistics of the run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ptt_cli::load::{LoadArgs, Report};
use ptt_relay::config::Config;
use ptt_tests::lossy::{Direction, Impairment, LossyProxy, seed_or};

/// A relay in this process on a generated directory (22 terminals, 3
/// groups), with the secrets file `ptt load --secrets` reads.
struct GeneratedRelay {
    addr: SocketAddr,
    cert: PathBuf,
    secrets: PathBuf,
    token: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ptt_relay::RelayError>>,
    dir: tempfile::TempDir,
}

impl GeneratedRelay {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let generated = ptt_directory::generate(TERMINALS, 3, 11)?;
        let directory = dir.path().join("directory.toml");
        let secrets = dir.path().join("secrets.txt");
        std::fs::write(&directory, &generated.toml)?;
        std::fs::write(&secrets, &generated.secrets)?;
        let config = Config {
            data_dir: dir.path().join("data"),
            listen: "127.0.0.1:0".parse()?,
            ops_listen: "127.0.0.1:0".parse()?,
            console_listen: "127.0.0.1:0".parse()?,
            directory: Some(directory),
            ..Config::default()
        };
        let relay = ptt_relay::Relay::load(config).await?;
        Ok(Self {
            addr: relay.local_addr(),
            cert: relay.cert_path().to_owned(),
            secrets,
            token: relay.shutdown_token(),
            task: tokio::spawn(relay.run()),
            dir,
        })
    }

    /// `ptt load` of every terminal against `server` (the relay or a proxy
    /// in front of it) for `seconds`, its report also written as JSON to
    /// `report.json` in the relay's folder.
    fn load_args(&self, server: SocketAddr, seconds: u64) -> LoadArgs {
        LoadArgs {
            server: Some(server),
            ca: Some(self.cert.clone()),
            secrets: Some(self.secrets.clone()),
            terminals: TERMINALS,
            groups: 3,
            duration: seconds,
            report: Some(self.dir.path().join("report.json")),
            quiet: true,
            ..LoadArgs::default()
        }
    }

    async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Terminals of every run: two talk groups of about ten listeners.
const TERMINALS: usize = 22;

/// Runs `ptt load` for `seconds` against an in-process relay through a
/// proxy that impairs the downlink with `impairment`; the report.
async fn load_through(impairment: Impairment, seconds: u64, seed: u64) -> anyhow::Result<Report> {
    let relay = GeneratedRelay::start().await?;
    let proxy = LossyProxy::start(relay.addr, seed).await?;
    proxy.set(Direction::ToClient, impairment);
    let args = relay.load_args(proxy.addr(), seconds);
    let report = tokio::time::timeout(
        Duration::from_secs(seconds + 60),
        ptt_cli::load::measure(&args),
    )
    .await??;
    relay.stop().await;
    eprintln!("{}", report.table());
    eprintln!(
        "proxy (seed {}): {:?}",
        proxy.seed(),
        proxy.stats().to_client
    );
    Ok(report)
}

/// A clean link: nothing lost or duplicated, every latency row filled and
/// ordered, and the JSON report (`--report`) carries every documented field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_link_loses_nothing_and_the_report_has_every_field() -> anyhow::Result<()> {
    let _shared = crate::LATENCY_BAR.read().await;
    let relay = GeneratedRelay::start().await?;
    let args = LoadArgs {
        talkers_per_group: 2,
        ..relay.load_args(relay.addr, 3)
    };
    tokio::time::timeout(Duration::from_secs(40), ptt_cli::load::run(args)).await??;
    let text = std::fs::read_to_string(relay.dir.path().join("report.json"))?;
    relay.stop().await;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    for field in [
        "terminals",
        "groups",
        "bursts",
        "frames_sent",
        "frames_expected",
        "frames_received",
        "loss_ratio",
        "duplicates",
        "reordered",
        "access_ms",
        "one_way_ms",
        "one_way_socket_ms",
        "mouth_to_ear_ms",
        "mouth_to_ear_approx_ms",
        "late_entry_ms",
        "relay_cpu_seconds",
        "relay_peak_rss_kib",
        "load_talker_cpu_seconds",
        "load_receive_cpu_seconds",
        "receive_lanes",
        "receive_lane_busy_max",
        "listener_acks_per_datagram",
    ] {
        assert!(json.get(field).is_some(), "report lacks {field}: {text}");
    }
    let report: Report = serde_json::from_str(&text)?;
    println!("{}", report.table());
    assert_eq!(report.terminals, TERMINALS);
    assert_eq!(report.groups, 3);
    assert!(!report.own_relay);
    assert!(report.bursts > 0 && report.frames_sent > 0, "{text}");
    assert_eq!(report.frames_received, report.frames_expected, "{text}");
    assert_eq!(report.duplicates, 0, "{text}");
    assert_eq!(report.decode_errors, 0, "{text}");
    for (name, p) in [
        ("access", report.access_ms),
        ("one-way", report.one_way_ms),
        ("one-way at the socket", report.one_way_socket_ms),
        ("mouth-to-ear", report.mouth_to_ear_ms),
        ("mouth-to-ear approx", report.mouth_to_ear_approx_ms),
        ("late entry", report.late_entry_ms),
    ] {
        let p = p.unwrap_or_else(|| panic!("no {name} samples: {text}"));
        assert!(p.count > 0);
        assert!(
            p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max,
            "{name} percentiles out of order: {p:?}"
        );
    }
    // Loopback: the relay path is far below the MCPTT budgets.
    assert!(report.access_ms.is_some_and(|p| p.p95 < 300.0), "{text}");
    assert!(
        report.late_entry_ms.is_some_and(|p| p.p95 < 1000.0),
        "{text}"
    );
    assert!(report.relay_cpu_seconds.is_none(), "not our own relay");
    let acks = report
        .listener_acks_per_datagram
        .expect("listeners' QUIC stats");
    assert!(acks > 0.0 && acks <= 1.0, "{acks} ACKs per datagram");
    Ok(())
}

/// `ptt load --link rtt=40ms` puts its own proxy between every terminal
/// and the relay: a frame crosses the link twice (talker → relay →
/// listener), 20 ms each way, and a floor request's answer once each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_option_puts_its_delay_between_terminals_and_relay() -> anyhow::Result<()> {
    let _alone = crate::LATENCY_BAR.write().await;
    let relay = GeneratedRelay::start().await?;
    let link: ptt_cli::load::LinkProfile = "rtt=40ms".parse()?;
    let args = LoadArgs {
        link: Some(link),
        ..relay.load_args(relay.addr, 4)
    };
    let report =
        tokio::time::timeout(Duration::from_secs(60), ptt_cli::load::measure(&args)).await??;
    let relay_addr = relay.addr.to_string();
    relay.stop().await;
    eprintln!("{}", report.table());
    assert_eq!(report.link.as_deref(), Some("rtt=40ms,jitter=0ms,loss=0%"));
    assert_eq!(report.server, relay_addr, "the relay, not the proxy");
    assert!(report.frames_expected > 1_000, "{report:?}");
    assert_eq!(
        report.frames_received, report.frames_expected,
        "nothing lost"
    );
    let socket = report.one_way_socket_ms.expect("kernel-stamped frames");
    // 40 ms of link, the relay's sub-millisecond path, the proxy's 1 ms
    // timer ticks twice, and a loaded machine's scheduling.
    assert!((40.0..48.0).contains(&socket.p50), "one-way {socket:?}");
    let access = report.access_ms.expect("floor grants");
    assert!(access.p50 >= 40.0, "a grant takes a round trip: {access:?}");
    assert!(report.listener_acks_per_datagram.is_some());
    Ok(())
}

/// The same clean run with every terminal on voice streams (voice.md §4):
/// nothing lost or duplicated either, every burst on its streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_voice_streams_a_clean_link_loses_nothing() -> anyhow::Result<()> {
    let _shared = crate::LATENCY_BAR.read().await;
    let relay = GeneratedRelay::start().await?;
    let args = LoadArgs {
        voice_streams: true,
        ..relay.load_args(relay.addr, 3)
    };
    let report =
        tokio::time::timeout(Duration::from_secs(40), ptt_cli::load::measure(&args)).await??;
    relay.stop().await;
    eprintln!("{}", report.table());
    assert!(report.voice_streams);
    assert!(
        report.bursts > 0 && report.frames_expected > 1_000,
        "{report:?}"
    );
    assert_eq!(report.frames_received, report.frames_expected);
    assert_eq!(report.duplicates, 0);
    Ok(())
}

/// 5 % loss, 40 ms delay and up to 10 ms of uniform jitter on every packet
/// to the listeners: the generator reports that loss (within 5 standard
/// deviations of the binomial count) and a one-way latency of 40 ms plus
/// the jitter's quantiles plus the relay's own sub-millisecond path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_reports_the_injected_loss_and_delay() -> anyhow::Result<()> {
    let _alone = crate::LATENCY_BAR.write().await;
    let injected = Impairment::loss(0.05)
        .with_delay(Duration::from_millis(40))
        .with_jitter(Duration::from_millis(10));
    let report = load_through(injected, 6, seed_or(41)).await?;
    let expected = report.frames_expected as f64;
    assert!(expected > 3_000.0, "a run too short to judge: {expected}");
    let sd = (0.05 * 0.95 / expected).sqrt();
    assert!(
        (report.loss_ratio - 0.05).abs() < 5.0 * sd,
        "loss {} vs 5 % injected (± {:.4})",
        report.loss_ratio,
        5.0 * sd
    );
    let socket = report.one_way_socket_ms.expect("kernel-stamped frames");
    assert!(
        socket.count as f64 > 0.8 * report.frames_received as f64,
        "most frames matched at the socket: {} of {}",
        socket.count,
        report.frames_received
    );
    // Delay + uniform jitter: the median at 45 ms, p99 at 49.9 ms. The
    // proxy's timers (1 ms ticks) and the relay's path add 2–3 ms alone
    // (p50 47.2, p99 52.7) and up to ~8 ms when the shared machine is busy
    // (a CI run: p50 49.0, p99 57.6); a stamp of the wrong packet would be
    // 20 ms off.
    assert!((45.0..52.0).contains(&socket.p50), "p50 {socket:?}");
    assert!((49.5..60.0).contains(&socket.p99), "p99 {socket:?}");
    assert_eq!(report.duplicates, 0);
    Ok(())
}

/// Up to 30 ms of uniform jitter on frames 20 ms apart reorders them: a
/// frame is overtaken by the next when its extra delay exceeds the next
/// one's by more than 20 ms, with probability (30 − 20)² / (2 · 30²) ≈
/// 5.6 %; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_reports_the_injected_reordering() -> anyhow::Result<()> {
    let _alone = crate::LATENCY_BAR.write().await;
    let injected = Impairment::NONE.with_jitter(Duration::from_millis(30));
    let report = load_through(injected, 6, seed_or(43)).await?;
    let received = report.frames_received as f64;
    assert!(received > 3_000.0, "a run too short to judge: {received}");
    assert_eq!(
        report.frames_received, report.frames_expected,
        "nothing lost"
    );
    let share = report.reordered as f64 / received;
    let sd = (0.056 * 0.944 / received).sqrt();
    assert!(
        (share - 0.056).abs() < 5.0 * sd + 0.01,
        "reordered {share:.4} vs 0.056 expected"
    );
    Ok(())
}
