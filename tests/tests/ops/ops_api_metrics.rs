//! `/metrics` of the ops port through a real HTTP client after real voice
//! over QUIC: the names, text that parses, the forward latency histogram,
//! floor and session counts, the quality the terminals report, and
//! OpenMetrics for scrapers that ask for it.

use crate::ops_port;

use std::time::Duration;

use ops_port::exposition::{Sample, value};
use ops_port::{Ops, district};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::clients::by_id;
use ptt_tests::{PATIENCE, TestRelay, opus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_real_burst_and_parse() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let ops = Ops::new(&relay);
    let mut clients = relay.connect_all([1, 2, 3]).await;

    // Terminal 1 talks 10 frames in group 10; 2 and 3 hear them.
    let burst = granted(&by_id(&mut clients, 1).press(10).await?).expect("granted");
    for seq in 0..10 {
        by_id(&mut clients, 1).send_datagram(opus::datagram(10, burst, seq, 0))?;
    }
    for id in [2, 3] {
        for _ in 0..10 {
            let frame = by_id(&mut clients, id).recv_voice(PATIENCE).await;
            assert!(frame.is_some(), "terminal {id} heard every frame");
        }
    }
    // Terminal 3 is not the holder: its frame is dropped and counted.
    by_id(&mut clients, 3).send_datagram(opus::datagram(10, burst, 0, 0))?;
    // Terminal 2 probes (kind 1): counted, forwarded to no one.
    let mut probe = opus::datagram(0, 0, 0, 0).to_vec();
    probe[0] = (1 << 4) | 1;
    probe.truncate(ptt_proto::voice::HEADER_LEN);
    by_id(&mut clients, 2).send_datagram(probe.into())?;
    // 2 queues behind 1 and is granted at 1's release (two access times).
    let queued = by_id(&mut clients, 2).press(10).await?;
    assert!(matches!(queued, Body::FloorQueued(_)), "{queued:?}");
    by_id(&mut clients, 1).release(10).await?;
    by_id(&mut clients, 2)
        .expect_body(|b| {
            granted(b).filter(|_| matches!(b, Body::FloorGranted(g) if g.group_id == 10))
        })
        .await?;
    by_id(&mut clients, 2).release(10).await?;
    // A request for a group that does not exist is refused by the session.
    let denied = by_id(&mut clients, 3).press(99).await?;
    assert!(matches!(denied, Body::FloorDenied(_)), "{denied:?}");
    // 3 reports what it heard in group 10, and (ignored) in group 11, which
    // it does not hear.
    let quality = |group_id| pb::GroupQuality {
        group_id,
        frames_received: 90,
        frames_lost: 10,
        jitter_us: 3_000,
        latency_mean_us: 45_000,
        ..Default::default()
    };
    let answer = by_id(&mut clients, 3)
        .request(Request::QualityReport(pb::QualityReport {
            interval_ms: 5_000,
            groups: vec![quality(10), quality(11)],
        }))
        .await?;
    assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
    // The dropped frame has been counted once the relay saw it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while relay.metrics.datagrams_in.get() < 12 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let samples = ops.metrics().await;
    let get = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
    };
    assert_eq!(get("pttd_voice_datagrams_received_total", &[]), 12.0);
    assert_eq!(get("pttd_voice_keepalives_received_total", &[]), 1.0);
    assert_eq!(get("pttd_voice_datagrams_forwarded_total", &[]), 20.0);
    assert_eq!(
        get(
            "pttd_voice_datagrams_dropped_total",
            &[("reason", "not_holder")]
        ),
        1.0
    );
    assert_eq!(
        get(
            "pttd_voice_datagrams_dropped_total",
            &[("reason", "bad_header")]
        ),
        0.0
    );
    // One latency observation per forwarded datagram, cumulative buckets.
    let count = get("pttd_forward_latency_seconds_count", &[]);
    assert_eq!(count, 10.0);
    assert!(get("pttd_forward_latency_seconds_sum", &[]) > 0.0);
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "pttd_forward_latency_seconds_bucket")
        .collect();
    assert_eq!(buckets.len(), 20, "19 bounds and +Inf");
    assert!(
        buckets.windows(2).all(|w| w[0].value <= w[1].value),
        "cumulative"
    );
    assert_eq!(
        get("pttd_forward_latency_seconds_bucket", &[("le", "+Inf")]),
        count
    );
    // A forward (parse, stamp, hand to two listeners) takes tens of µs in
    // a debug build; 10 ms leaves a hundredfold margin for a loaded CI
    // machine while a forward that waited on anything would miss it.
    assert_eq!(
        get("pttd_forward_latency_seconds_bucket", &[("le", "0.01")]),
        count
    );
    assert_eq!(get("pttd_floor_access_seconds_count", &[]), 2.0);
    assert_eq!(get("pttd_floor_grants_total", &[]), 2.0);
    assert_eq!(get("pttd_floor_queued_total", &[]), 1.0);
    assert_eq!(
        get("pttd_floor_denials_total", &[("reason", "unknown_group")]),
        1.0
    );
    assert_eq!(get("pttd_floor_revokes_total", &[]), 0.0);
    assert_eq!(get("pttd_floor_preemptions_total", &[]), 0.0);
    assert_eq!(get("pttd_terminals_connected", &[("role", "guard")]), 3.0);
    assert_eq!(
        get("pttd_terminals_connected", &[("role", "dispatcher")]),
        0.0
    );
    assert_eq!(get("pttd_groups", &[]), 2.0);
    assert_eq!(get("pttd_groups_active", &[]), 0.0);
    assert_eq!(get("pttd_emergencies_open", &[]), 0.0);
    assert_eq!(get("pttd_sessions_opened_total", &[]), 3.0);
    assert_eq!(
        get("pttd_client_mouth_to_ear_seconds", &[("group", "10")]),
        0.045
    );
    assert_eq!(get("pttd_client_jitter_seconds", &[("group", "10")]), 0.003);
    assert_eq!(get("pttd_client_loss_ratio", &[("group", "10")]), 0.1);
    assert_eq!(
        value(&samples, "pttd_client_loss_ratio", &[("group", "11")]),
        None,
        "a report for a group the terminal does not hear is ignored"
    );
    assert_eq!(
        get("pttd_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
    for name in [
        "pttd_calllog_queue_depth",
        "pttd_calllog_dropped_total",
        "pttd_recordings_written_total",
        "pttd_recording_frames_dropped_total",
        "pttd_recording_errors_total",
        "pttd_auth_failures_total",
        "pttd_auth_rate_limited_total",
        "pttd_control_malformed_total",
        "pttd_cut_off_total",
        "pttd_alerts_sent_total",
    ] {
        get(name, &[]);
    }

    // OpenMetrics for scrapers that ask for it.
    let response = ops
        .http
        .get(format!("{}/metrics", ops.base))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await?;
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("application/openmetrics-text")
    );
    assert!(response.text().await?.ends_with("# EOF\n"));

    relay.stop().await?;
    Ok(())
}
