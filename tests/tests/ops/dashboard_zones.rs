//! Zone logic on the live dashboard in a real browser (headless Chromium):
//! the page shows who a patrol brought in and why, who a backup call pulled
//! in until the emergency is cleared, the regroupings newest first, and the
//! private calls up now.

use crate::browser;

use anyhow::ensure;
use browser::{Chromium, ONE_AT_A_TIME};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::clients::by_id as client;
use ptt_tests::geo::location;
use ptt_tests::{PATIENCE, TestDirectory, TestRelay};
use serde_json::json;

const ZONE_STATE: &str = r#"
    const tile = (id) => document.querySelector(`[data-group="${id}"]`);
    const lines = (t, sel) => t ? [...t.querySelectorAll(sel)].map((li) => li.textContent) : [];
    const t31 = tile(31), t101 = tile(101);
    return {
        patrol_regrouped: !!t31 && t31.classList.contains('regrouped'),
        patrol: lines(t31, '.g-dynamic li'),
        emergency: !!t101 && t101.classList.contains('emergency'),
        backup: lines(t101, '.g-dynamic li.backup'),
        regroups: [...document.querySelectorAll('#regroups li[data-regroup] .r-who')]
            .map((e) => e.textContent),
        private_calls: document.getElementById('private-calls').textContent,
        conn: document.getElementById('conn').textContent,
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_who_a_patrol_and_a_backup_call_brought_in() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Compound A (guards 301, 302) by the road at 0 m, compound B (guard 311) at 250 m;
    // patrol 201 leads group 31; dispatcher 1.
    let directory = TestDirectory::new()
        .dispatcher(1)
        .group_with(1, "control-room", [1], &[])
        .patrol(31, 201, 1)
        .compound(101, "Compound A", 0.0, &[301, 302], 1)
        .compound(102, "Compound B", 250.0, &[311], 1);
    let relay = TestRelay::start(&directory).await?;
    let mut clients = relay.connect_all([1, 201, 301, 302, 311]).await;
    let chromium = Chromium::start().await?;
    chromium
        .browser()
        .goto(&format!("http://{}/", relay.ops))
        .await?;
    let quiet = chromium
        .until("the stream connected", PATIENCE, ZONE_STATE, |v| {
            v["conn"] == "live"
        })
        .await?;
    ensure!(
        quiet["patrol"] == json!([]) && quiet["regroups"] == json!([]),
        "nothing regrouped yet: {quiet}"
    );

    // The patrol's lead reports a position by compound A: its guards join the patrol,
    // and the patrol's tile says who and why.
    let answer = client(&mut clients, 201)
        .request(location(0.0, 0.0))
        .await?;
    ensure!(matches!(answer, Body::Ack(_)), "{answer:?}");
    let seen = chromium
        .until(
            "A's guards in the patrol's tile and the regroupings",
            PATIENCE,
            ZONE_STATE,
            |v| {
                v["patrol_regrouped"] == true
                    && v["patrol"] == json!(["+ T301, T302 · Compound A"])
                    && v["regroups"].as_array().map(Vec::len) == Some(2)
            },
        )
        .await?;
    ensure!(
        seen["regroups"] == json!(["+ T302 → G31", "+ T301 → G31"]),
        "the last change first: {seen}"
    );

    // A guard of A presses emergency at A's gate: B's guard (205 m away) is pulled in,
    // and the emergency tile lists it; the dispatcher rings 302 privately meanwhile.
    client(&mut clients, 301)
        .request(location(0.0, 50.0))
        .await?;
    let pressed = client(&mut clients, 301)
        .press_with(101, pb::Priority::Emergency, pb::FloorKind::Emergency)
        .await?;
    ensure!(granted(&pressed).is_some(), "{pressed:?}");
    let ringing = client(&mut clients, 1)
        .request(Request::PrivateCallSetup(pb::PrivateCallSetup {
            callee_terminal_id: 302,
            ..Default::default()
        }))
        .await?;
    ensure!(matches!(ringing, Body::PrivateCallSetup(_)), "{ringing:?}");
    let seen = chromium
        .until(
            "B's guard pulled into the emergency, one private call",
            PATIENCE,
            ZONE_STATE,
            |v| {
                v["emergency"] == true
                    && v["backup"] == json!(["+ T311 · Compound B"])
                    && v["private_calls"] == "1"
                    && v["regroups"][0] == "+ T311 → G101"
            },
        )
        .await?;
    println!("the page shows: {seen}");
    let shot = chromium.screenshot("dashboard-zones.png").await?;
    println!("screenshot: {}", shot.display());

    // The dispatcher clears the emergency: the backup leaves the tile, the list says so.
    client(&mut clients, 301).release(101).await?;
    let cleared = client(&mut clients, 1)
        .request(Request::EmergencyClear(pb::EmergencyClear {
            group_id: 101,
        }))
        .await?;
    ensure!(matches!(cleared, Body::EmergencyState(_)), "{cleared:?}");
    chromium
        .until("the backup let go", PATIENCE, ZONE_STATE, |v| {
            v["emergency"] == false
                && v["backup"] == json!([])
                && v["regroups"][0] == "− T311 ← G101"
                && v["patrol"] == json!(["+ T301, T302 · Compound A"])
        })
        .await?;
    chromium.close().await?;
    for client in clients {
        client.close().await;
    }
    relay.stop().await?;
    Ok(())
}
