//! Monitoring a terminal cannot fake or blind, over real QUIC on loopback:
//! a lying quality report weighs as one listener and is counted, fake
//! reports in one interval count once, and every garbage datagram moves a
//! drop counter.

use std::time::{Duration, Instant};

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_relay_core::metrics::DropReason;
use ptt_tests::bystander::{self, Bystanders};
use ptt_tests::client::granted;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay, opus};

/// Frames the talker's sequence numbers cover; it sends every other one,
/// so an honest listener hears half and counts the other half lost.
const SPAN: u16 = 100;

/// Waits until `done` holds (bounded by [`PATIENCE`]).
async fn until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

fn report(group_id: u32, received: u64, lost: u64, latency_us: u32) -> Request {
    Request::QualityReport(pb::QualityReport {
        interval_ms: 5_000,
        groups: vec![pb::GroupQuality {
            group_id,
            frames_received: received,
            frames_lost: lost,
            latency_mean_us: latency_us,
            ..Default::default()
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_report_weighs_as_one_listener_and_is_counted() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(1..=5).group(10, 1..=5);
    let relay = TestRelay::start(&directory).await?;
    let mut clients = relay.connect_all(1..=5).await;
    let (talker, rest) = clients.split_first_mut().expect("five");
    let burst = granted(&talker.press(10).await?).expect("granted");
    let mut ticker = tokio::time::interval(Duration::from_millis(2));
    for seq in (0..SPAN).step_by(2) {
        ticker.tick().await;
        talker.send_datagram(opus::datagram(10, burst, seq, 0))?;
    }
    let sent = u64::from(SPAN / 2);
    // Terminals 2..=4 report honestly what they heard: the relay's frames,
    // and the gaps in their sequence numbers as lost.
    for honest in &mut rest[..3] {
        let (mut heard, mut top) = (0u64, 0u16);
        while heard < sent {
            let Some(frame) = honest.recv_voice(PATIENCE).await else {
                break;
            };
            heard += 1;
            top = frame.header.sequence;
        }
        let lost = u64::from(top) + 1 - heard;
        let answer = honest.request(report(10, heard, lost, 150_000)).await?;
        assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
    }
    let honest = relay.metrics.client_quality.group(10, Instant::now());
    let honest = honest.expect("honest figures");
    let honest_loss = honest.loss_ratio.expect("loss");
    assert!((honest_loss - 0.5).abs() < 0.02, "{honest_loss}");
    // Terminal 5 heard the same frames and claims a million, none lost,
    // 1 ms mouth-to-ear; the talker, sent nothing, lies the same.
    let liar = &mut rest[3];
    while liar.recv_voice(Duration::from_millis(300)).await.is_some() {}
    liar.request(report(10, 1_000_000, 0, 1_000)).await?;
    talker.request(report(10, 1_000_000, 0, 1_000)).await?;

    // The liar weighs as one of four listeners: the loss stays within a
    // quarter of the honest value (it was 0.00025 when lies counted in full).
    let f = relay.metrics.client_quality.group(10, Instant::now());
    let f = f.expect("figures");
    let loss = f.loss_ratio.expect("loss");
    assert!(
        (loss - honest_loss).abs() <= honest_loss / 4.0 + 0.01,
        "{loss}"
    );
    let m2e = f.mouth_to_ear.expect("latency").as_secs_f64();
    assert!(
        m2e >= 0.150 * 0.6,
        "{m2e}, was 1 ms when lies counted in full"
    );
    let counters = &relay.metrics.quality_reports;
    assert_eq!(counters.accepted(), 5);
    assert_eq!(counters.overclaimed(), 2, "the listener's and the talker's");
    // The relay's own view beside it: 50 frames, each handed to 4 listeners.
    let traffic = relay.groups.get(10).expect("group 10").traffic();
    assert_eq!(traffic.frames_forwarded, sent);
    assert_eq!(traffic.datagrams_handed, 4 * sent);
    assert_eq!(traffic.datagrams_refused, 0);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_fake_reports_in_one_interval_count_once() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(1..=2).group(10, 1..=2);
    let relay = TestRelay::start(&directory).await?;
    let mut clients = relay.connect_all(1..=2).await;
    for _ in 0..5 {
        let answer = clients[1].request(report(10, 0, 1_000, 0)).await?;
        assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
    }
    let counters = &relay.metrics.quality_reports;
    assert_eq!((counters.accepted(), counters.too_frequent()), (1, 4));
    let f = relay.metrics.client_quality.group(10, Instant::now());
    assert_eq!(f.map(|f| f.reports), Some(1));
    // Nothing was sent to it: its claimed loss weighs nothing.
    assert_eq!(f.and_then(|f| f.loss_ratio), None);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_garbage_datagram_moves_a_drop_counter() -> anyhow::Result<()> {
    const GARBAGE: u64 = 10_000;
    /// Frames of each bystander burst: 3 s at 50/s.
    const BYSTANDER_FRAMES: u16 = 150;
    let directory = TestDirectory::new().guards(1..=2).group(10, 1..=2);
    let relay = TestRelay::start(&bystander::in_directory(directory)).await?;
    let rogue = Client::connect(relay.addr, &relay.cert, 1).await?;
    // Bystanders in a group of their own: quiet, then under the garbage.
    let mut bystanders = Bystanders::start_on(&relay).await?;
    let quiet = bystanders.measure(BYSTANDER_FRAMES).await?;
    let m = relay.metrics.clone();
    let dropped = move || DropReason::ALL.iter().map(|&r| m.dropped(r)).sum::<u64>();
    let before = dropped();
    let voice_before = relay.metrics.datagrams_in.get();
    let mut measuring = bystanders.spawn_measure(BYSTANDER_FRAMES);
    measuring.started().await?;
    let flood_started = Instant::now();
    for i in 0..GARBAGE {
        let datagram = match i % 3 {
            0 => bytes::Bytes::from_static(b"\xff\xff\xff"), // no header
            1 => bytes::Bytes::from_static(&[0x1f; 40]),     // unknown kind
            _ => bytes::Bytes::from_static(&[0x70; 40]),     // another version
        };
        // quinn's send buffer may overflow too: wait for room.
        rogue.conn.send_datagram_wait(datagram).await?;
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let all = until(|| dropped() - before >= GARBAGE).await;
    let flood_took = flood_started.elapsed();
    let (_, attacked) = measuring.finish().await?;
    eprintln!("bystanders quiet:          {quiet}");
    eprintln!("bystanders under garbage:  {attacked} ({GARBAGE} sent in {flood_took:?})");
    attacked.holds_against(&quiet).map_err(anyhow::Error::msg)?;
    let m = &relay.metrics;
    let counted = dropped() - before;
    assert!(all, "{counted} of {GARBAGE} counted");
    assert_eq!(counted, GARBAGE, "each once; the bystanders' frames none");
    let overflow = m.dropped(DropReason::ReceiveOverflow);
    assert_eq!(m.dropped(DropReason::BadHeader) + overflow, GARBAGE);
    // Read besides the garbage: the bystanders' frames, every one.
    let voice = m.datagrams_in.get() - voice_before;
    assert_eq!(voice + overflow, GARBAGE + u64::from(attacked.sent));
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_terminal_reports_what_it_hears_unasked() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(1..=2).group(10, 1..=2);
    let relay = TestRelay::start(&directory).await?;
    let mut config = ptt_client::ClientConfig::new(
        relay.addr,
        ptt_client::Trust::Pinned(relay.cert.clone()),
        2,
        ptt_tests::directory::secret(2),
    );
    assert_eq!(
        config.quality_report_interval,
        Some(ptt_client::config::QUALITY_REPORT_INTERVAL),
        "on by default: the dashboard's mouth-to-ear and loss come from these"
    );
    // Sooner than the default, for the test's sake.
    config.quality_report_interval = Some(Duration::from_millis(300));
    let listener = ptt_client::Client::connect(config).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 1).await?;
    let burst = granted(&talker.press(10).await?).expect("granted");
    for seq in 0..10 {
        talker.send_datagram(opus::datagram(10, burst, seq, 0))?;
    }
    let reports = &relay.metrics.quality_reports;
    assert!(
        until(|| reports.accepted() >= 1).await,
        "no quality report reached the relay"
    );
    assert_eq!(reports.overclaimed(), 0, "an honest report");
    drop(listener);
    relay.stop().await?;
    Ok(())
}
