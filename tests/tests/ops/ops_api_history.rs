//! The JSON history API of the ops port through a real HTTP client: live
//! holders and presence, bursts from the call log with their recordings
//! (byte ranges too), alerts with acknowledgements, emergencies, and 400 for
//! bad parameters, naming the parameter.

use crate::ops_port;

use std::collections::HashMap;
use std::time::Duration;

use ops_port::exposition::value;
use ops_port::{Ops, district};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::clients::by_id;
use ptt_tests::{PATIENCE, TestRelay, opus};
use serde_json::Value;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_messages_are_in_the_history_with_their_label() -> anyhow::Result<()> {
    let directory = district().table("[[status]]\ncode = 3\nlabel = \"Need backup\"\n");
    let relay = TestRelay::start(&directory).await?;
    let ops = Ops::new(&relay);
    let mut clients = relay.connect_all([1, 2, 9]).await;
    use pb::status_message::Target;
    let status = |code: u32, text: &str, target| {
        Request::StatusMessage(pb::StatusMessage {
            code,
            text: text.to_owned(),
            target: Some(target),
            ..Default::default()
        })
    };
    let sender = by_id(&mut clients, 1);
    for request in [
        status(3, "gate 2", Target::Dispatchers(true)),
        status(0, "all quiet", Target::GroupId(10)),
    ] {
        let answer = sender.request(request).await?;
        assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
    }
    // A refused one (an unknown code) is not in the history.
    let refused = sender
        .request(status(7, "", Target::Dispatchers(true)))
        .await?;
    assert!(
        matches!(&refused, Body::Error(e) if e.reason == i32::from(pb::ErrorReason::Malformed)),
        "{refused:?}"
    );

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let listed = loop {
        let body = ops.json("/api/v1/status-messages").await;
        let n = body["status_messages"].as_array().map_or(0, Vec::len);
        if n >= 2 || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let messages = listed["status_messages"].as_array().expect("a list");
    assert_eq!(messages.len(), 2, "{listed}");
    // Newest first.
    let (last, first) = (&messages[0], &messages[1]);
    assert_eq!(
        (
            last["from"]["id"].as_u64(),
            last["code"].as_u64(),
            last["text"].as_str(),
            last["to"].as_str(),
            last["target"]["id"].as_u64()
        ),
        (Some(1), Some(0), Some("all quiet"), Some("group"), Some(10)),
        "{listed}"
    );
    assert_eq!(
        (
            first["label"].as_str(),
            first["text"].as_str(),
            first["to"].as_str()
        ),
        (Some("Need backup"), Some("gate 2"), Some("dispatchers")),
        "{listed}"
    );
    assert!(first.get("target").is_none(), "{listed}");
    relay.stop().await?;
    Ok(())
}
