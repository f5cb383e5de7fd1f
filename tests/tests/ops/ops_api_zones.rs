//! Zone logic as operators see it through the ops port's JSON API: zones,
//! positions as reported, the members a patrol or a backup call brought in
//! and why, every regrouping in the log; and private calls (up now, and as
//! logged).

use crate::ops_port;

use std::time::Duration;

use ops_port::{Ops, district};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::clients::by_id;
use ptt_tests::geo::{self, at, location};
use ptt_tests::{PATIENCE, TestDirectory, TestRelay};
use serde_json::Value;

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

/// A private call setup to `callee`.
fn call(callee: u32) -> Request {
    Request::PrivateCallSetup(pb::PrivateCallSetup {
        callee_terminal_id: callee,
        ..Default::default()
    })
}

/// `caller` calls `callee` and the call rings there; the caller's setup.
async fn ring(
    clients: &mut [ptt_tests::Client],
    caller: u32,
    callee: u32,
) -> anyhow::Result<pb::PrivateCallSetup> {
    let answer = by_id(clients, caller).request(call(callee)).await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("setup answered with {answer:?}")
    };
    by_id(clients, callee)
        .expect_body(|b| matches!(b, Body::PrivateCallSetup(_)).then_some(()))
        .await?;
    Ok(setup)
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
    let setup = ring(&mut clients, 1, 2).await?;
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

    // 1 calls 2, which accepts; 1 talks: the burst is listed under the
    // call's group, named as a private call (no directory names it).
    let setup = ring(&mut clients, 1, 2).await?;
    let accepted = by_id(&mut clients, 2)
        .request(Request::PrivateCallAccept(pb::PrivateCallAccept {
            call_id: setup.call_id,
            group_id: 0,
        }))
        .await?;
    assert!(matches!(accepted, Body::Ack(_)), "{accepted:?}");
    let caller = by_id(&mut clients, 1);
    caller
        .expect_body(|b| matches!(b, Body::PrivateCallAccept(_)).then_some(()))
        .await?;
    let burst = granted(&caller.press(setup.group_id).await?).expect("the caller talks");
    for sequence in 0..3 {
        caller.send_datagram(ptt_tests::opus::datagram(
            setup.group_id,
            burst,
            sequence,
            0,
        ))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    caller.release(setup.group_id).await?;
    let path = format!("/api/v1/bursts?group={}", setup.group_id);
    let bursts = json_eventually(&ops, &path, |body| {
        body["bursts"].as_array().is_some_and(|b| !b.is_empty())
    })
    .await;
    assert_eq!(
        bursts["bursts"][0]["group"],
        serde_json::json!({ "id": setup.group_id, "name": "private call" }),
        "{bursts}"
    );

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
