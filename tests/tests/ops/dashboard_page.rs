//! The live dashboard in a real browser: Debian's headless Chromium, driven
//! through chromedriver (WebDriver), watches a real relay while terminals
//! talk over real QUIC. The page must show who holds the floor, the queue,
//! the emergency, live latency figures and the alert tally, and play a
//! burst's recording. Screenshots are left in `target/artifacts/`.

use crate::browser;

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use browser::{Chromium, ONE_AT_A_TIME};
use fantoccini::Locator;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::clients::by_id as client;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay, opus};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Sends 20 ms voice frames for `burst` of `group` until `stop` (or 60 s).
fn talk(
    client: &Client,
    group: u32,
    burst: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<u16> {
    let conn = client.conn.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        let mut sequence = 0u16;
        while sequence < 3000 && !stop.is_cancelled() {
            ticker.tick().await;
            let _ = conn.send_datagram(opus::datagram(group, burst, sequence, 0));
            sequence += 1;
        }
        sequence
    })
}

const GROUP_STATE: &str = r#"
    const tile = (id) => document.querySelector(`[data-group="${id}"]`);
    const text = (el, sel) => (el && el.querySelector(sel) ? el.querySelector(sel).textContent : null);
    const t10 = tile(10), t11 = tile(11);
    const alert = document.querySelector('#alerts li[data-alert]');
    return {
        held: !!t10 && t10.classList.contains('held'),
        holder: text(t10, '.g-holder'),
        queue: text(t10, '.g-queue'),
        emergency: !!t11 && t11.classList.contains('emergency'),
        declarer: text(t11, '.g-emergency'),
        fwd_p50: document.getElementById('fwd-p50').textContent,
        fwd_p99: document.getElementById('fwd-p99').textContent,
        acc_p50: document.getElementById('acc-p50').textContent,
        responding: text(alert, '.a-responding b'),
        missing: text(alert, '.a-missing'),
        silent: text(alert, '.a-silent'),
        conn: document.getElementById('conn').textContent,
        bursts: document.querySelectorAll('#bursts li[data-burst]').length,
    };
"#;

/// A latency figure as the page prints it: a number and a unit, not "—".
fn is_figure(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.chars().next().is_some_and(|c| c.is_ascii_digit())
            && (s.ends_with(" µs") || s.ends_with(" ms") || s.ends_with(" s"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_floor_live_latency_and_plays_a_recording() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let directory = TestDirectory::new()
        .dispatcher(1)
        .guards(100..=106)
        // 101 waits in the queue for the whole test.
        .group_with(
            10,
            "patrol-route",
            [1, 100, 101],
            &["queue-expiry = \"2m\""],
        )
        .group_with(11, "enterprise", [1, 102], &[])
        .group_with(12, "enterprise", [1, 103], &[])
        .group_with(13, "enterprise", [1, 104], &[])
        .group_with(14, "squad", [1, 105, 106], &[]);
    let relay = TestRelay::start(&directory).await?;
    let mut clients = relay.connect_all([1, 100, 101, 102, 103, 105, 106]).await;

    // The page is open before anything happens: what follows must reach it
    // live.
    let chromium = Chromium::start().await?;
    chromium
        .browser()
        .goto(&format!("http://{}/", relay.ops))
        .await?;
    chromium
        .until("the stream connected", PATIENCE, GROUP_STATE, |v| {
            v["conn"] == "live"
        })
        .await?;

    // A short burst in group 12: the list gets an entry.
    let burst = granted(&client(&mut clients, 103).press(12).await?).context("103 granted")?;
    let stop = CancellationToken::new();
    let first = talk(client(&mut clients, 103), 12, burst, stop.clone());
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.cancel();
    first.await?;
    client(&mut clients, 103).release(12).await?;

    // 100 talks in group 10 and keeps talking; 101 queues behind it; 102
    // declares an emergency in group 11; the dispatcher alerts group 10 and
    // 101 answers that it is responding.
    let burst = granted(&client(&mut clients, 100).press(10).await?).context("100 granted")?;
    let stop = CancellationToken::new();
    let talker = talk(client(&mut clients, 100), 10, burst, stop.clone());
    let talking_since = tokio::time::Instant::now();
    let queued = client(&mut clients, 101).press(10).await?;
    ensure!(
        matches!(queued, Body::FloorQueued(_)),
        "101 queued: {queued:?}"
    );
    let declared = client(&mut clients, 102)
        .press_with(11, pb::Priority::Normal, pb::FloorKind::Emergency)
        .await?;
    ensure!(
        granted(&declared).is_some(),
        "emergency granted: {declared:?}"
    );
    let tally = client(&mut clients, 1)
        .request(Request::Alert(pb::Alert {
            text: "Suspect vehicle, blue van, heading north on Trunk Road 2".into(),
            target_group_ids: vec![10],
            requires_ack: true,
            ..Default::default()
        }))
        .await?;
    let Body::AlertTally(tally) = tally else {
        bail!("alert answered with {tally:?}");
    };
    let acked = client(&mut clients, 101)
        .request(Request::AlertAck(pb::AlertAck {
            alert_id: tally.alert_id,
            kind: pb::AlertAckKind::Responding.into(),
            status_code: None,
        }))
        .await?;
    ensure!(matches!(acked, Body::Ack(_)), "ack answered with {acked:?}");

    let seen = chromium
        .until(
            "T100 holding group 10 with a live forward-latency figure",
            PATIENCE * 2,
            GROUP_STATE,
            |v| {
                v["held"] == true
                    && v["holder"] == "T100"
                    && v["queue"] == "+1 queued"
                    && v["emergency"] == true
                    && v["declarer"] == "T102"
                    && is_figure(&v["fwd_p50"])
                    && is_figure(&v["fwd_p99"])
                    && is_figure(&v["acc_p50"])
                    && v["responding"] == "1"
                    // Every test terminal is of organisation "Test"; only
                    // 101 answered (these raw clients send no receipt).
                    && v["missing"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("not reached: Test "))
                    // And by name: everyone but 101, who answered.
                    && v["silent"].as_str().is_some_and(|m| {
                        m.starts_with("no answer: T") && !m.contains("T101")
                    })
                    && v["conn"] == "live"
                    && v["bursts"].as_u64() >= Some(1)
            },
        )
        .await?;
    println!("the page shows: {seen}");
    // The forward chart draws the seconds of talk: pixels in the colours of
    // its p50/p95/p99 lines (the grid and labels are grey).
    let drawn = chromium
        .until(
            "the forward-latency chart lines",
            PATIENCE,
            r#"const c = document.getElementById('chart-fwd');
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               const lines = [[61, 220, 132], [255, 176, 32], [255, 92, 138]];
               let lit = 0;
               for (let i = 0; i < d.length; i += 4) {
                 if (lines.some(([r, g, b]) =>
                     Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60)) lit++;
               }
               return lit;"#,
            |v| v.as_u64() > Some(60),
        )
        .await?;
    println!("forward chart: {drawn} pixels of its lines");
    // Talk for a few seconds at least, so the recording is worth playing.
    tokio::time::sleep_until(talking_since + Duration::from_secs(3)).await;
    let shot = chromium.screenshot("dashboard.png").await?;
    println!("screenshot: {}", shot.display());
    // A laptop screen gets the same page in one scrolling column pair.
    chromium.browser().set_window_size(1366, 768).await?;
    chromium
        .until("the laptop layout", PATIENCE, GROUP_STATE, |v| {
            v["held"] == true
        })
        .await?;
    chromium.screenshot("dashboard-laptop.png").await?;
    chromium.browser().set_window_size(1920, 1080).await?;

    // The burst ends: it appears in the list with its recording, which plays.
    stop.cancel();
    let frames = talker.await?;
    client(&mut clients, 100).release(10).await?;
    let burst = chromium
        .until(
            "T100's burst with a playable recording",
            PATIENCE,
            r#"for (const li of document.querySelectorAll('#bursts li[data-burst]')) {
                 const who = li.querySelector('.b-who').textContent;
                 const where = li.querySelector('.b-when').textContent;
                 const play = li.querySelector('button.play');
                 if (who === 'T100' && where.startsWith('G10 ') && li.dataset.recording && !play.disabled)
                   return { id: li.dataset.burst, url: li.dataset.recording };
               }
               return null;"#,
            |v| v.is_object(),
        )
        .await?;
    let recording = burst["url"].as_str().context("url")?.to_owned();
    // The file is renamed into place a moment after the burst is logged.
    chromium
        .until(
            "the recording served",
            PATIENCE,
            &format!(
                "const r = new XMLHttpRequest(); r.open('HEAD', '{recording}', false); r.send(); \
                 return [r.status, r.getResponseHeader('content-type')];"
            ),
            |v| v[0] == 200,
        )
        .await?;
    let id = burst["id"].as_str().context("id")?;
    chromium
        .browser()
        .find(Locator::Css(&format!(
            "#bursts li[data-burst='{id}'] button.play"
        )))
        .await?
        .click()
        .await?;
    const PLAYER: &str = r#"const p = document.getElementById('player');
        return { t: p.currentTime, paused: p.paused, ended: p.ended,
                 error: p.error ? p.error.code : null, src: p.currentSrc,
                 state: document.getElementById('player-state').textContent };"#;
    let playing = chromium
        .until("the recording playing", PATIENCE, PLAYER, |v| {
            v["error"].is_null() && v["paused"] == false && v["t"].as_f64() > Some(0.3)
        })
        .await?;
    println!("{frames} frames sent; player: {playing}");
    ensure!(
        playing["src"]
            .as_str()
            .is_some_and(|s| s.ends_with(&recording)),
        "{playing}"
    );
    chromium.screenshot("dashboard-playing.png").await?;
    // Played to the end: as long as the voice that was sent.
    let sent = f64::from(frames) * 0.020;
    let ended = chromium
        .until(
            "the recording played to its end",
            PATIENCE + Duration::from_secs_f64(sent),
            PLAYER,
            |v| v["ended"] == true || !v["error"].is_null(),
        )
        .await?;
    let length = ended["t"].as_f64().unwrap_or(0.0);
    println!("played to the end: {length:.2} s of {sent:.2} s sent");
    ensure!(
        ended["error"].is_null() && length > 0.8 * sent && length < sent + 1.0,
        "the recording played {length} s of {sent} s of voice sent: {ended}"
    );
    chromium.close().await?;

    for client in clients {
        client.close().await;
    }
    relay.stop().await?;
    Ok(())
}
