//! The ops port through a real HTTP client: `/metrics` after real voice
//! over QUIC (names, parseable text, the forward latency histogram), and the
//! JSON history API (live holders and presence, bursts from the call log
//! with their recordings, alerts with acknowledgements, emergencies, and 400
//! for bad parameters).

use std::collections::HashMap;
use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay, opus};
use serde_json::Value;

/// Guards 1..=4 (4 stays offline), dispatcher 9; group 10 of 1, 2, 3 and
/// the dispatcher; group 11 of 1 and 4.
fn district() -> TestDirectory {
    TestDirectory::new()
        .guards(1..=4)
        .dispatcher(9)
        .group(10, [1, 2, 3, 9])
        .group(11, [1, 4])
}

/// One sample of the exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses the Prometheus text format strictly enough to catch a broken
/// exposition: every line a comment (`# HELP`/`# TYPE`) or a sample, every
/// sample of a family that has HELP and TYPE.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut helped = Vec::new();
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.trim().is_empty(), "empty HELP for {name}");
            helped.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "{name}: type {kind}"
            );
            typed.push(name.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        if line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample name value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .expect("quoted label value");
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {name:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.iter().any(|t| t == f))
            })
            .unwrap_or(name);
        assert!(
            typed.iter().any(|t| t == family) && helped.iter().any(|h| h == family),
            "{name} has no HELP/TYPE"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|s| s.value)
}

struct Ops {
    http: reqwest::Client,
    base: String,
}

impl Ops {
    fn new(relay: &TestRelay) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(PATIENCE)
                .build()
                .expect("http client"),
            base: format!("http://{}", relay.ops),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET expecting 200 and JSON.
    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }

    /// GET expecting `status` and a JSON error naming `mentions`.
    async fn refused(&self, path: &str, status: u16, mentions: &str) {
        let response = self.get(path).await;
        assert_eq!(response.status(), status, "GET {path}");
        let body: Value = response.json().await.expect("JSON error body");
        let error = body["error"].as_str().expect("error text");
        assert!(error.contains(mentions), "GET {path}: {error:?}");
    }

    async fn metrics(&self) -> Vec<Sample> {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        parse_exposition(&response.text().await.expect("body"))
    }
}

/// The bursts of `group` once the call log holds `n` of them.
async fn bursts_eventually(ops: &Ops, group: u32, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = ops.json(&format!("/api/v1/bursts?group={group}")).await;
        let bursts = body["bursts"].as_array().expect("bursts").clone();
        if bursts.len() >= n || tokio::time::Instant::now() > deadline {
            return bursts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn by_id(clients: &mut [Client], id: u32) -> &mut Client {
    clients
        .iter_mut()
        .find(|c| c.terminal == id)
        .expect("client")
}

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
    while relay.metrics.datagrams_in.get() < 11 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let samples = ops.metrics().await;
    let get = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
    };
    assert_eq!(get("pttd_voice_datagrams_received_total", &[]), 11.0);
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
    assert_eq!(
        get("pttd_forward_latency_seconds_bucket", &[("le", "10")]),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_api_shows_live_state_and_the_call_log() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let ops = Ops::new(&relay);
    let mut clients = relay.connect_all([1, 2, 3, 9]).await;

    // Presence: 1, 2, 3 and 9 online and hearing their groups; 4 offline.
    let terminals = ops.json("/api/v1/terminals").await;
    let terminals: HashMap<u64, &Value> = terminals["terminals"]
        .as_array()
        .expect("terminals")
        .iter()
        .map(|t| (t["id"].as_u64().unwrap(), t))
        .collect();
    assert_eq!(terminals.len(), 5);
    assert_eq!(terminals[&1]["online"], true);
    assert_eq!(terminals[&1]["name"], "T1");
    assert_eq!(terminals[&1]["role"], "guard");
    assert_eq!(terminals[&1]["groups"], serde_json::json!([10, 11]));
    assert_eq!(terminals[&9]["role"], "dispatcher");
    assert_eq!(terminals[&4]["online"], false);
    assert_eq!(terminals[&4]["groups"], serde_json::json!([]));

    // While 1 talks, the group shows it as the holder.
    let burst = granted(&by_id(&mut clients, 1).press(10).await?).expect("granted");
    for seq in 0..5 {
        by_id(&mut clients, 1).send_datagram(opus::datagram(10, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let groups = ops.json("/api/v1/groups").await;
    let group10 = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["id"] == 10)
        .expect("group 10")
        .clone();
    assert_eq!(group10["name"], "G10");
    assert_eq!(group10["holder"]["id"], 1);
    assert_eq!(group10["holder"]["name"], "T1");
    assert_eq!(group10["holder"]["burst_id"], burst);
    assert_eq!(group10["member_count"], 4);
    assert_eq!(group10["members"], serde_json::json!([1, 2, 3, 9]));
    assert_eq!(group10["listening"], 4);
    let samples = ops.metrics().await;
    assert_eq!(value(&samples, "pttd_groups_active", &[]), Some(1.0));
    by_id(&mut clients, 1).release(10).await?;
    let groups = ops.json("/api/v1/groups").await;
    assert!(groups["groups"][0]["holder"].is_null(), "{groups}");

    // The burst, from the call log, with talker, group and its recording.
    let bursts = bursts_eventually(&ops, 10, 1).await;
    assert_eq!(bursts.len(), 1, "{bursts:?}");
    let logged = &bursts[0];
    assert_eq!(logged["burst_id"], burst);
    assert_eq!(logged["talker"]["id"], 1);
    assert_eq!(logged["talker"]["name"], "T1");
    assert_eq!(logged["group"]["id"], 10);
    assert_eq!(logged["group"]["name"], "G10");
    assert_eq!(logged["outcome"], "released");
    assert_eq!(logged["kind"], "normal");
    assert_eq!(logged["frames"], 5);
    assert!(logged["ended_at_ms"].as_i64() >= logged["started_at_ms"].as_i64());
    let row = logged["id"].as_i64().expect("row id");
    let url = logged["recording"].as_str().expect("a recording URL");
    assert_eq!(url, format!("/api/v1/bursts/{row}/recording"));
    // The file is finished after the tail grace: wait for it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let response = loop {
        let response = ops.get(url).await;
        if response.status() == 200 || tokio::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/ogg");
    let ogg = response.bytes().await?;
    assert!(ogg.starts_with(b"OggS"), "an Ogg stream");
    // Byte ranges, so a player can seek and show the length.
    let ranged = ops
        .http
        .get(format!("{}{url}", ops.base))
        .header("range", "bytes=0-3")
        .send()
        .await?;
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 0-3/{}", ogg.len()).as_str()
    );
    assert_eq!(ranged.headers()["content-type"], "audio/ogg");
    assert_eq!(&ranged.bytes().await?[..], b"OggS");
    // Another group's filter and a window before the burst find nothing.
    assert_eq!(bursts_eventually(&ops, 11, 0).await.len(), 0);
    let started = logged["started_at_ms"].as_i64().unwrap();
    let before = ops
        .json(&format!("/api/v1/bursts?to={started}&limit=5"))
        .await;
    assert_eq!(before["bursts"].as_array().map(Vec::len), Some(0));

    // An alert with one acknowledgement.
    let sent = by_id(&mut clients, 9)
        .request(Request::Alert(pb::Alert {
            text: "check the gate".into(),
            target_group_ids: vec![10],
            requires_ack: true,
            ..Default::default()
        }))
        .await?;
    let Body::AlertTally(tally) = sent else {
        panic!("alert answered with {sent:?}")
    };
    let ack = by_id(&mut clients, 2)
        .request(Request::AlertAck(pb::AlertAck {
            alert_id: tally.alert_id,
            kind: pb::AlertAckKind::Responding.into(),
            status_code: Some(8),
        }))
        .await?;
    assert!(matches!(ack, Body::Ack(_)), "{ack:?}");
    let alerts = ops.json("/api/v1/alerts").await;
    let alert = &alerts["alerts"][0];
    assert_eq!(alert["alert_id"], tally.alert_id);
    assert_eq!(alert["from"]["id"], 9);
    assert_eq!(alert["text"], "check the gate");
    assert_eq!(alert["groups"][0]["id"], 10);
    let acks = alert["acks"].as_array().expect("acks");
    assert!(
        acks.iter().any(|a| a["terminal"]["id"] == 2
            && a["kind"] == "responding"
            && a["status_code"] == 8),
        "{acks:?}"
    );

    // An emergency: open in the group view, the gauge and the history.
    let declared = by_id(&mut clients, 3)
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: 10,
            text: "help".into(),
        }))
        .await?;
    assert!(matches!(declared, Body::EmergencyState(_)), "{declared:?}");
    let groups = ops.json("/api/v1/groups").await;
    assert_eq!(groups["groups"][0]["emergency"]["id"], 3);
    assert_eq!(
        value(&ops.metrics().await, "pttd_emergencies_open", &[]),
        Some(1.0)
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let emergencies = loop {
        let body = ops.json("/api/v1/emergencies?group=10").await;
        let list = body["emergencies"].as_array().cloned().unwrap_or_default();
        if !list.is_empty() || tokio::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(emergencies.len(), 1);
    assert_eq!(emergencies[0]["declared_by"]["id"], 3);
    assert!(emergencies[0]["cleared"].is_null());

    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_naming_the_parameter() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let ops = Ops::new(&relay);
    ops.refused("/api/v1/bursts?limit=0", 400, "limit").await;
    ops.refused("/api/v1/bursts?limit=1001", 400, "limit").await;
    ops.refused("/api/v1/bursts?group=ten", 400, "group").await;
    ops.refused("/api/v1/bursts?group=99", 400, "group").await;
    ops.refused("/api/v1/bursts?from=yesterday", 400, "from")
        .await;
    ops.refused("/api/v1/bursts?from=10&to=5", 400, "to").await;
    ops.refused("/api/v1/alerts?form=1", 400, "form").await;
    ops.refused("/api/v1/alerts?limit=1&limit=2", 400, "limit")
        .await;
    ops.refused("/api/v1/emergencies?group=-1", 400, "group")
        .await;
    ops.refused("/api/v1/groups?x=1", 400, "x").await;
    ops.refused("/api/v1/bursts/abc/recording", 400, "id").await;
    ops.refused("/api/v1/bursts/12345/recording", 404, "12345")
        .await;
    // Good parameters still answer.
    let empty = ops
        .json("/api/v1/bursts?group=10&from=0&to=1&limit=1000")
        .await;
    assert_eq!(empty["bursts"], serde_json::json!([]));
    relay.stop().await?;
    Ok(())
}
