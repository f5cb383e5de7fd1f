//! The ops port through a real HTTP client: `/metrics` after real voice
//! over QUIC (names, parseable text, the forward latency histogram), and the
//! JSON history API (live holders and presence, bursts from the call log
//! with their recordings, alerts with acknowledgements, emergencies, and 400
//! for bad parameters); zone logic as operators see it (zones, positions,
//! the members a patrol or a backup call brought in and why, every
//! regrouping in the log) and private calls (up now, and as logged).

use std::collections::HashMap;
use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::geo::{self, at, location};
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
    ops.refused("/api/v1/regroups?group=ten", 400, "group")
        .await;
    ops.refused("/api/v1/regroups?group=99", 400, "group").await;
    ops.refused("/api/v1/regroups?from=10&to=5", 400, "to")
        .await;
    ops.refused("/api/v1/private-calls?group=10", 400, "group")
        .await;
    ops.refused("/api/v1/private-calls?limit=0", 400, "limit")
        .await;
    ops.refused("/api/v1/zones?kind=premises", 400, "kind")
        .await;
    // Good parameters still answer.
    let empty = ops
        .json("/api/v1/bursts?group=10&from=0&to=1&limit=1000")
        .await;
    assert_eq!(empty["bursts"], serde_json::json!([]));
    relay.stop().await?;
    Ok(())
}

/// GETs `path` until `done` accepts the JSON (at most [`PATIENCE`]); the last
/// answer either way. The call log is written off the hot path, so what was
/// just done shows a moment later.
async fn json_eventually(ops: &Ops, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let body = ops.json(path).await;
        if done(&body) || tokio::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The group `id` of a `/api/v1/groups` answer.
fn group_of(groups: &Value, id: u32) -> Value {
    groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["id"] == id)
        .unwrap_or_else(|| panic!("no group {id} in {groups}"))
        .clone()
}

/// The terminal `id` of a `/api/v1/terminals` answer.
fn terminal_of(terminals: &Value, id: u32) -> Value {
    terminals["terminals"]
        .as_array()
        .expect("terminals")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no terminal {id} in {terminals}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_and_private_calls_in_the_api() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let ops = Ops::new(&relay);
    let mut clients = relay.connect_all([1, 2, 9]).await;

    // No zones in this directory, no patrols, nobody added by zone logic.
    assert_eq!(
        ops.json("/api/v1/zones").await,
        serde_json::json!({ "zones": [] })
    );
    let groups = ops.json("/api/v1/groups").await;
    for group in groups["groups"].as_array().expect("groups") {
        assert_eq!(group["dynamic_members"], serde_json::json!([]), "{group}");
        assert!(group["patrol"].is_null(), "{group}");
    }
    assert!(terminal_of(&ops.json("/api/v1/terminals").await, 1)["location"].is_null());

    // Terminal 1 reports where it is: the API shows the position as received.
    let before = ptt_calllog::now_ms();
    let answer = by_id(&mut clients, 1)
        .request(Request::LocationReport(pb::LocationReport {
            latitude_deg: 30.001_25,
            longitude_deg: 120.002_5,
            accuracy_m: 7.5,
            ..Default::default()
        }))
        .await?;
    assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
    let after = ptt_calllog::now_ms();
    let terminals = ops.json("/api/v1/terminals").await;
    let location = &terminal_of(&terminals, 1)["location"];
    assert_eq!(location["lat"], 30.001_25, "{location}");
    assert_eq!(location["lon"], 120.002_5);
    assert_eq!(location["accuracy_m"], 7.5);
    let received = location["received_at_ms"].as_i64().expect("received_at_ms");
    assert!((before..=after).contains(&received), "{received}");
    assert!(terminal_of(&terminals, 2)["location"].is_null());
    // A position out of range is refused and changes nothing.
    let refused = by_id(&mut clients, 2)
        .request(Request::LocationReport(pb::LocationReport {
            latitude_deg: 95.0,
            ..Default::default()
        }))
        .await?;
    assert!(matches!(refused, Body::Error(_)), "{refused:?}");
    assert!(terminal_of(&ops.json("/api/v1/terminals").await, 2)["location"].is_null());

    // 1 calls 2: while it rings it is counted as up, and logged only when it ends.
    let call = |callee| {
        Request::PrivateCallSetup(pb::PrivateCallSetup {
            callee_terminal_id: callee,
            ..Default::default()
        })
    };
    let answer = by_id(&mut clients, 1).request(call(2)).await?;
    let Body::PrivateCallSetup(setup) = answer else {
        panic!("setup answered with {answer:?}")
    };
    by_id(&mut clients, 2)
        .expect_body(|b| matches!(b, Body::PrivateCallSetup(_)).then_some(()))
        .await?;
    let calls = ops.json("/api/v1/private-calls").await;
    assert_eq!(calls["active"], 1, "{calls}");
    assert_eq!(calls["private_calls"], serde_json::json!([]));
    let declined = by_id(&mut clients, 2)
        .request(Request::PrivateCallReject(pb::PrivateCallReject {
            call_id: setup.call_id,
            reason: pb::PrivateCallRejectReason::Declined.into(),
        }))
        .await?;
    assert!(matches!(declined, Body::Ack(_)), "{declined:?}");
    // 1 calls 4, which shares group 11 with it but is offline.
    let answer = by_id(&mut clients, 1).request(call(4)).await?;
    assert!(matches!(answer, Body::PrivateCallSetup(_)), "{answer:?}");

    let calls = json_eventually(&ops, "/api/v1/private-calls", |body| {
        body["private_calls"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    assert_eq!(calls["active"], 0, "{calls}");
    let list = calls["private_calls"].as_array().expect("private_calls");
    assert_eq!(list.len(), 2, "{calls}");
    let (offline, declined) = (&list[0], &list[1]);
    assert_eq!(offline["outcome"], "offline", "newest first: {calls}");
    assert_eq!(offline["callee"]["id"], 4);
    assert_eq!(declined["outcome"], "declined");
    assert_eq!(declined["call_id"], setup.call_id);
    assert_eq!(
        declined["caller"],
        serde_json::json!({ "id": 1, "name": "T1" })
    );
    assert_eq!(
        declined["callee"],
        serde_json::json!({ "id": 2, "name": "T2" })
    );
    assert_eq!(declined["group"], setup.group_id);
    assert_eq!(declined["emergency"], false);
    assert!(declined["answered_at_ms"].is_null());
    let started = declined["started_at_ms"].as_i64().expect("started");
    assert!(declined["ended_at_ms"].as_i64() >= Some(started));
    let newest = ops.json("/api/v1/private-calls?limit=1").await;
    assert_eq!(newest["private_calls"][0]["outcome"], "offline");
    let earlier = ops
        .json(&format!("/api/v1/private-calls?to={started}"))
        .await;
    assert_eq!(earlier["private_calls"], serde_json::json!([]));

    // Nothing regrouped in a district without zones.
    let regroups = ops.json("/api/v1/regroups?group=10").await;
    assert_eq!(regroups, serde_json::json!({ "regroups": [] }));
    relay.stop().await?;
    Ok(())
}

/// Compound A (zone 101, guards 301 and 302) 100 m north of a road at 0 m, compound D
/// (zone 104, guard 331) at 300 m, each a 50 m circle; patrol 201 leads group 31
/// (approach 60 m, hysteresis 30 m); dispatcher 1 in the control room; a neighbourhood
/// (zone 1) drawn as a polygon.
fn zoned_district() -> TestDirectory {
    let mut directory = TestDirectory::new()
        .dispatcher(1)
        .group_with(1, "control-room", [1], &[])
        .patrol(31, 201, 1);
    for (zone, name, east, neighbour, guards) in [
        (101, "Compound A", 0.0, 104, vec![301, 302]),
        (104, "Compound D", 300.0, 101, vec![331]),
    ] {
        let zone_line = format!("zone = {zone}");
        let premises = geo::premises(zone, name, east, 100.0, 50.0);
        directory = directory
            .guards(guards.clone())
            .table(&format!("{premises}neighbours = [{neighbour}]\n"))
            .group_with(
                zone,
                "enterprise",
                [1].into_iter().chain(guards),
                &[zone_line.as_str()],
            );
    }
    // A neighbourhood drawn as a polygon (kind defaults to area): no zone logic.
    directory.table(
        "[[zone]]\nid = 1\nname = \"Riverside\"\nneighbours = [101]\n\
         polygon = [[30.0, 120.0], [30.0, 120.01], [30.01, 120.0]]\n",
    )
}

/// (`+`/`-`, terminal) of a `Regrouped` about `terminal`.
fn regrouped_of(terminal: u32) -> impl Fn(&Body) -> Option<char> {
    move |body| match body {
        Body::Regrouped(r) if r.terminal_id == terminal => {
            Some(if r.change == i32::from(pb::RegroupChange::Added) {
                '+'
            } else {
                '-'
            })
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_logic_shows_in_the_api_and_every_change_is_logged() -> anyhow::Result<()> {
    let relay = TestRelay::start(&zoned_district()).await?;
    let ops = Ops::new(&relay);
    let mut clients = relay.connect_all([1, 201, 301]).await;
    let mut guard = clients.pop().expect("301");
    let mut lead = clients.pop().expect("201");
    let mut dispatcher = clients.pop().expect("1");

    // The zones as the directory has them.
    let zones = ops.json("/api/v1/zones").await;
    let (lat, lon) = at(0.0, 100.0);
    assert_eq!(
        zones["zones"][0],
        serde_json::json!({
            "id": 101, "name": "Compound A", "kind": "premises", "neighbours": [104],
            "shape": { "circle": { "lat": lat, "lon": lon, "radius_m": 50.0 } },
        })
    );
    assert_eq!(zones["zones"][1]["id"], 104);
    assert_eq!(
        zones["zones"][2],
        serde_json::json!({
            "id": 1, "name": "Riverside", "kind": "area", "neighbours": [101],
            "shape": { "polygon": [[30.0, 120.0], [30.0, 120.01], [30.01, 120.0]] },
        })
    );
    assert_eq!(zones["zones"].as_array().map(Vec::len), Some(3));

    // The patrol before its lead reported anything.
    let patrol = group_of(&ops.json("/api/v1/groups").await, 31);
    assert_eq!(
        patrol["patrol"],
        serde_json::json!({
            "lead": 201, "lead_name": "T201", "approach_m": 60.0, "hysteresis_m": 30.0,
            "near": [], "lead_location": null,
        })
    );
    assert_eq!(patrol["dynamic_members"], serde_json::json!([]));
    assert!(group_of(&ops.json("/api/v1/groups").await, 101)["patrol"].is_null());

    // The lead passes compound A: its guards are in the patrol, and the API says why.
    lead.request(location(0.0, 0.0)).await?;
    assert_eq!(guard.expect_body(regrouped_of(301)).await?, '+');
    let groups = ops.json("/api/v1/groups").await;
    let patrol = group_of(&groups, 31);
    let member = |terminal: u32, reason: &str, zone: u32, zone_name: &str| {
        serde_json::json!({
            "terminal": terminal, "name": format!("T{terminal}"), "reason": reason,
            "zone": zone, "zone_name": zone_name,
        })
    };
    assert_eq!(
        patrol["dynamic_members"],
        serde_json::json!([
            member(301, "zone-entered", 101, "Compound A"),
            member(302, "zone-entered", 101, "Compound A"),
        ])
    );
    assert_eq!(patrol["members"], serde_json::json!([1, 201, 301, 302]));
    assert_eq!(patrol["member_count"], 4);
    assert_eq!(patrol["patrol"]["near"], serde_json::json!([101]));
    let (lat, lon) = at(0.0, 0.0);
    assert_eq!(patrol["patrol"]["lead_location"]["lat"], lat);
    assert_eq!(patrol["patrol"]["lead_location"]["lon"], lon);
    assert_eq!(patrol["patrol"]["lead_location"]["accuracy_m"], 5.0);
    assert_eq!(
        terminal_of(&ops.json("/api/v1/terminals").await, 201)["location"],
        patrol["patrol"]["lead_location"]
    );
    // The compound's own group is unchanged: its guards are static members there.
    assert_eq!(
        group_of(&groups, 101)["dynamic_members"],
        serde_json::json!([])
    );

    // The lead moves on: they leave.
    lead.request(location(-1000.0, 0.0)).await?;
    assert_eq!(guard.expect_body(regrouped_of(301)).await?, '-');
    let patrol = group_of(&ops.json("/api/v1/groups").await, 31);
    assert_eq!(patrol["dynamic_members"], serde_json::json!([]));
    assert_eq!(patrol["patrol"]["near"], serde_json::json!([]));
    assert_eq!(patrol["members"], serde_json::json!([1, 201]));

    // A backup call at A's gate pulls in D's guard (250 m away) until it is cleared.
    guard.request(location(0.0, 50.0)).await?;
    let pressed = guard
        .press_with(101, pb::Priority::Emergency, pb::FloorKind::Emergency)
        .await?;
    assert!(granted(&pressed).is_some(), "{pressed:?}");
    let groups = json_eventually(&ops, "/api/v1/groups", |body| {
        group_of(body, 101)["dynamic_members"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    })
    .await;
    let emergency = group_of(&groups, 101);
    assert_eq!(
        emergency["dynamic_members"],
        serde_json::json!([member(331, "backup", 104, "Compound D")])
    );
    assert_eq!(emergency["emergency"]["id"], 301);
    guard.release(101).await?;
    let cleared = dispatcher
        .request(Request::EmergencyClear(pb::EmergencyClear {
            group_id: 101,
        }))
        .await?;
    assert!(matches!(cleared, Body::EmergencyState(_)), "{cleared:?}");
    let groups = json_eventually(&ops, "/api/v1/groups", |body| {
        group_of(body, 101)["dynamic_members"] == serde_json::json!([])
    })
    .await;
    assert_eq!(
        group_of(&groups, 101)["dynamic_members"],
        serde_json::json!([])
    );

    // Every change is in the log, newest first (changes of the same moment: the one
    // made last first).
    let summary = |body: &Value| -> Vec<String> {
        body["regroups"]
            .as_array()
            .expect("regroups")
            .iter()
            .map(|r| {
                format!(
                    "{}{}@{} {} {}",
                    if r["added"] == true { '+' } else { '-' },
                    r["terminal"]["id"],
                    r["group"]["id"],
                    r["reason"].as_str().unwrap_or("?"),
                    r["zone"]["name"].as_str().unwrap_or("?"),
                )
            })
            .collect()
    };
    let all = json_eventually(&ops, "/api/v1/regroups", |body| {
        body["regroups"].as_array().map(Vec::len) >= Some(6)
    })
    .await;
    assert_eq!(
        summary(&all),
        [
            "-331@101 backup-cleared Compound D",
            "+331@101 backup Compound D",
            "-302@31 zone-left Compound A",
            "-301@31 zone-left Compound A",
            "+302@31 zone-entered Compound A",
            "+301@31 zone-entered Compound A",
        ]
    );
    let first = &all["regroups"][5];
    assert_eq!(first["terminal"]["name"], "T301");
    assert_eq!(first["group"]["name"], "G31");
    assert_eq!(first["zone"]["id"], 101);
    let patrol_log = ops.json("/api/v1/regroups?group=31").await;
    assert_eq!(summary(&patrol_log), summary(&all)[2..]);
    let newest = ops.json("/api/v1/regroups?limit=2").await;
    assert_eq!(summary(&newest), summary(&all)[..2]);
    let started = first["at_ms"].as_i64().expect("at_ms");
    let before = ops.json(&format!("/api/v1/regroups?to={started}")).await;
    assert_eq!(before["regroups"], serde_json::json!([]));
    relay.stop().await?;
    Ok(())
}
