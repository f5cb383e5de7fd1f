//! The dispatchers' console in a real browser: Debian's headless Chromium,
//! driven through chromedriver, logs in to a real relay over WebTransport
//! with a fake microphone playing a known tone, talks to a `ptt listen`
//! terminal and hears a `ptt talk` one, and answers an emergency.
//! Screenshots are left in `target/artifacts/`.

use crate::browser;

use std::time::Duration;

use anyhow::{Context, ensure};
use browser::{Chromium, ONE_AT_A_TIME};
use fantoccini::Locator;
use ptt_cli::cli::ConnArgs;
use ptt_cli::cli::listen::{self, ListenArgs};
use ptt_cli::cli::respond::{self, RespondArgs};
use ptt_cli::cli::talk::{self, TalkArgs, TalkPriority};
use ptt_cli::cli::track::{self, TrackArgs};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::directory::secret;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay};
use serde_json::Value;

/// The dispatcher the console logs in as, and the group it works in.
const DISPATCHER: u32 = 1;
const GROUP: u32 = 11;
const GUARD: u32 = 100;

/// Samples per second of the WAVs here (what terminals send).
const RATE: u32 = 16_000;
/// The fake microphone's tone.
const TONE_HZ: f64 = 440.0;

/// Lowest share of the heard audio's power at the tone's frequency, in dB
/// over the rest. Measured: 20.3 dB through Chromium's capture (its noise
/// suppression fades a steady tone, which the 100 ms windows allow),
/// resampling, WebCodecs' Opus encoder, the relay and `ptt listen`'s
/// decoder. Silence, noise, or frames played out of order fall far below.
const MIN_TONE_DB: f64 = 12.0;

fn district() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(DISPATCHER)
        .guards(GUARD..GUARD + 2)
        .group_with(GROUP, "patrol-route", [DISPATCHER, GUARD, GUARD + 1], &[])
}

/// `seconds` of a sine at [`TONE_HZ`], at half scale.
fn tone(seconds: f64) -> Vec<i16> {
    let samples = (seconds * f64::from(RATE)) as usize;
    (0..samples)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * TONE_HZ * i as f64 / f64::from(RATE);
            (phase.sin() * 16_000.0) as i16
        })
        .collect()
}

/// Samples in one analysis window: 100 ms, a whole number of the tone's
/// periods (44), so a clean tone leaks nothing out of its bin.
const WINDOW: usize = 1_600;

/// Power at [`TONE_HZ`] against the rest of `pcm`'s power, in dB, summed
/// over 100 ms windows (Goertzel's algorithm in each): windows let the
/// level change, as the browser's gain control and noise suppression make
/// it do on a steady tone, without counting that as noise.
fn tone_to_rest_db(pcm: &[i16]) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * TONE_HZ / f64::from(RATE)).cos();
    let (mut at_tone, mut total) = (0.0f64, 0.0f64);
    for window in pcm.chunks_exact(WINDOW) {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &sample in window {
            let x = f64::from(sample);
            total += x * x;
            let s0 = x + coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        // |X(k)|² of the bin, scaled to the window's power (a pure sine
        // gives all of it).
        at_tone += 2.0 * (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / WINDOW as f64;
    }
    let rest = (total - at_tone).max(1.0);
    10.0 * (at_tone.max(1.0) / rest).log10()
}

fn conn(relay: &TestRelay, id: u32) -> ConnArgs {
    ConnArgs {
        server: relay.addr.to_string(),
        ca: relay.cert.clone(),
        id,
        secret: secret(id),
        connect_timeout: 3.0,
        voice_streams: false,
    }
}

/// What the page says about itself (`window.pttConsole`).
const STATE: &str = "return window.pttConsole;";

/// Opens the console, logs in as the dispatcher and waits until it is
/// online.
async fn log_in(chromium: &Chromium, relay: &TestRelay) -> anyhow::Result<()> {
    fill_in_login(chromium, relay, &secret(DISPATCHER)).await?;
    chromium
        .until("the console online", PATIENCE, STATE, |v| {
            v["state"] == "online"
        })
        .await?;
    Ok(())
}

/// Opens the console and logs in as the dispatcher with `secret`.
async fn fill_in_login(chromium: &Chromium, relay: &TestRelay, secret: &str) -> anyhow::Result<()> {
    let browser = chromium.browser();
    browser
        .goto(&format!("http://{}/console", relay.ops))
        .await?;
    for (field, text) in [
        ("#terminal-id", DISPATCHER.to_string()),
        ("#secret", secret.to_owned()),
    ] {
        browser
            .find(Locator::Css(field))
            .await?
            .send_keys(&text)
            .await?;
    }
    browser
        .find(Locator::Css("#login-button"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Holds the talk button for `hold`, the way a dispatcher presses it, and
/// takes a screenshot halfway.
async fn press_to_talk(chromium: &Chromium, hold: Duration) -> anyhow::Result<Value> {
    chromium
        .js(&format!(
            "document.querySelector('[data-group=\"{GROUP}\"]').click(); \
             document.querySelector('#talk').dispatchEvent(new PointerEvent('pointerdown', {{bubbles: true}}));"
        ))
        .await?;
    let granted = chromium
        .until("the floor granted", PATIENCE, STATE, |v| {
            v["talk"]["state"] == "granted"
        })
        .await?;
    tokio::time::sleep(hold / 2).await;
    chromium.screenshot("console-talking.png").await?;
    tokio::time::sleep(hold / 2).await;
    chromium
        .js("document.querySelector('#talk').dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));")
        .await?;
    Ok(granted)
}

/// A relay, and Chromium whose microphone plays a 3 s tone in a loop
/// (from the folder returned with them).
async fn start() -> anyhow::Result<(TestRelay, Chromium, tempfile::TempDir)> {
    let relay = TestRelay::start(&district()).await?;
    let (chromium, dir) = chromium_with_tone().await?;
    Ok((relay, chromium, dir))
}

/// Chromium whose microphone plays a 3 s tone in a loop, from a WAV in the
/// folder returned with it (kept while the browser runs).
async fn chromium_with_tone() -> anyhow::Result<(Chromium, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let microphone = dir.path().join("microphone.wav");
    listen::write_wav(&microphone, &tone(3.0))?;
    let chromium = Chromium::start_with_microphone(&microphone).await?;
    Ok((chromium, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_talks_to_a_terminal_and_hears_one() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (relay, chromium, _microphone) = start().await?;
    log_in(&chromium, &relay).await?;

    // `ptt listen` plays out the console's burst.
    let listener = conn(&relay, GUARD).connect().await?;
    let listen_args = ListenArgs {
        conn: conn(&relay, GUARD),
        group: GROUP,
        wav: None,
        seconds: Some(30.0),
        bursts: Some(1),
    };
    let listening = tokio::spawn(async move {
        let report = listen::run(&listener, &listen_args, std::future::pending()).await;
        listener.close().await;
        report
    });
    let granted = press_to_talk(&chromium, Duration::from_secs(2)).await?;
    let report = tokio::time::timeout(Duration::from_secs(30), listening)
        .await
        .context("ptt listen never finished")???;
    let burst = report.bursts.first().context("no burst heard")?;
    assert_eq!(burst.talker, DISPATCHER);
    let heard = report.pcm;
    ensure!(
        heard.len() > RATE as usize,
        "only {} samples heard",
        heard.len()
    );
    let db = tone_to_rest_db(&heard);
    println!(
        "console -> terminal: access {} ms, {} samples, tone {db:.1} dB over the rest",
        granted["talk"]["accessMs"],
        heard.len()
    );
    ensure!(db > MIN_TONE_DB, "the tone is {db:.1} dB over the rest");

    // `ptt talk` sends a tone; the console decodes it.
    let talker = conn(&relay, GUARD + 1).connect().await?;
    let talk_args = TalkArgs {
        conn: conn(&relay, GUARD + 1),
        group: GROUP,
        wav: None,
        tone: Some(1.5),
        priority: TalkPriority::Normal,
        emergency: false,
    };
    // Two bursts: each new burst starts a new decoder stream.
    for _ in 0..2 {
        talk::run(&talker, &talk_args, std::future::pending()).await?;
    }
    talker.close().await;
    let state = chromium
        .until("both bursts heard", PATIENCE, STATE, |v| {
            v["groups"][GROUP.to_string()]["framesDecoded"]
                .as_u64()
                .is_some_and(|n| n >= 120)
        })
        .await?;
    ensure!(
        state["state"] == "online",
        "the console went {}",
        state["state"]
    );
    let heard = &state["groups"][GROUP.to_string()];
    println!(
        "terminal -> console: {} frames decoded, {} dropped, peak {}",
        heard["framesDecoded"], heard["framesDropped"], heard["peakLevel"]
    );
    ensure!(
        heard["peakLevel"].as_f64().is_some_and(|peak| peak > 0.05),
        "the console decoded silence: {heard}"
    );
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_appears_on_the_console_and_is_cleared_from_it() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (relay, chromium, _microphone) = start().await?;
    log_in(&chromium, &relay).await?;

    let mut guard = Client::connect(relay.addr, &relay.cert, GUARD).await?;
    guard
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: GROUP,
            text: "Burglar at the east gate".into(),
        }))
        .await?;
    chromium
        .until("the emergency banner", PATIENCE, BANNER, |v| {
            v["shown"] == true && v["emergency"] == true
        })
        .await?;
    chromium.screenshot("console-emergency.png").await?;
    chromium
        .browser()
        .find(Locator::Css("#clear-emergency"))
        .await?
        .click()
        .await?;
    chromium
        .until("the banner gone", PATIENCE, BANNER, |v| {
            v["shown"] == false && v["emergency"] == false
        })
        .await?;
    let cleared = guard
        .expect_body(|b| match b {
            Body::EmergencyState(state) if !state.active => Some(state.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(cleared.group_id, GROUP);
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

/// Whether the banner shows, and the group's emergency mark.
const BANNER: &str = r#"
    const banner = document.querySelector('#emergency-banner');
    return {
        shown: !!banner && !banner.hidden && getComputedStyle(banner).display !== 'none',
        emergency: !!window.pttConsole.groups[11] && window.pttConsole.groups[11].emergency,
        text: banner ? banner.textContent : null,
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_shown_on_the_login_form() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (relay, chromium, _microphone) = start().await?;
    fill_in_login(&chromium, &relay, "not the secret").await?;
    let shown = chromium
        .until(
            "the login error",
            PATIENCE,
            "return document.querySelector('#login-error').textContent;",
            |v| v.as_str().is_some_and(|text| !text.is_empty()),
        )
        .await?;
    assert_eq!(shown, "Wrong terminal id or secret");
    chromium.screenshot("console-wrong-secret.png").await?;
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

/// Now in Unix µs (the clock the voice header's timestamps are on).
fn unix_us() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// p50 and p99 of `delays` (ms), sorted in place.
fn percentiles(delays: &mut [f64]) -> (f64, f64) {
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// Sends `seconds` of the tone from `talker` in `burst` of `group` as a
/// terminal does: real Opus (ptt-client's encoder), a frame every 20 ms,
/// each stamped with the time it is sent.
async fn talk_tone(talker: &Client, group: u32, burst: u32, seconds: f64) -> anyhow::Result<()> {
    use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN};
    use ptt_proto::voice::{self, Flags, Kind, VoiceHeader};
    let mut encoder = Backend::default().encoder(CodecConfig::default())?;
    let mut packet = vec![0; MAX_PACKET_LEN];
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for (sequence, frame) in tone(seconds).chunks_exact(FRAME_SAMPLES).enumerate() {
        ticker.tick().await;
        let len = encoder.encode(frame, &mut packet)?;
        let header = VoiceHeader {
            kind: Kind::Voice,
            flags: Flags(0),
            group_id: group,
            talker_id: 0,
            burst_id: burst,
            sequence: u16::try_from(sequence)?,
            timestamp_us: unix_us(),
        };
        let mut datagram = bytes::BytesMut::new();
        voice::encode(&header, &packet[..len], &mut datagram)?;
        talker.send_datagram(datagram.freeze())?;
    }
    Ok(())
}

/// Mouth-to-ear delays both ways between the console and a terminal, in one
/// run on loopback: 10 s of the console talking (its frames' capture times
/// against their arrival at a terminal's socket; the terminal's own jitter
/// buffer comes on top) and 10 s of a terminal talking real Opus frames
/// stamped as they are sent (against the moment the console's speaker
/// plays each, its jitter buffer and audio output included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (about 30 s): cargo test -p ptt-tests --test ops measure_mouth_to_ear -- --ignored --nocapture"]
async fn measure_mouth_to_ear_both_ways() -> anyhow::Result<()> {
    const SECONDS: u64 = 10;
    let _serial = ONE_AT_A_TIME.lock().await;
    let (relay, chromium, _microphone) = start().await?;
    log_in(&chromium, &relay).await?;
    let listener = Client::connect(relay.addr, &relay.cert, GUARD).await?;

    // The console talks.
    chromium
        .js(&format!(
            "document.querySelector('[data-group=\"{GROUP}\"]').click(); \
             document.querySelector('#talk').dispatchEvent(new PointerEvent('pointerdown', {{bubbles: true}}));"
        ))
        .await?;
    let mut to_terminal = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(SECONDS);
    while tokio::time::Instant::now() < end {
        if let Some(frame) = listener.recv_voice(Duration::from_secs(1)).await
            && frame.header.talker_id == DISPATCHER
        {
            to_terminal.push(unix_us().saturating_sub(frame.header.timestamp_us) as f64 / 1000.0);
        }
    }
    chromium
        .js("document.querySelector('#talk').dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));")
        .await?;
    ensure!(
        to_terminal.len() > 100,
        "{} frames heard",
        to_terminal.len()
    );

    // A terminal talks real Opus, paced as a terminal sends it.
    let mut talker = Client::connect(relay.addr, &relay.cert, GUARD + 1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let burst = ptt_tests::client::granted(&talker.press(GROUP).await?).context("granted")?;
    talk_tone(&talker, GROUP, burst, SECONDS as f64).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    talker.release(GROUP).await?;
    let heard = chromium
        .js(&format!("return window.pttConsole.groups[{GROUP}];"))
        .await?;
    let mut to_console: Vec<f64> = serde_json::from_value(heard["mouthToEarMs"].clone())?;
    ensure!(to_console.len() > 100, "{} frames played", to_console.len());

    let (c50, c99) = percentiles(&mut to_terminal);
    let (t50, t99) = percentiles(&mut to_console);
    println!(
        "console -> terminal's socket (capture, encode, WebTransport, relay): p50 {c50:.1} ms, p99 {c99:.1} ms over {} frames",
        to_terminal.len()
    );
    println!(
        "terminal -> console's speaker (relay, WebTransport, jitter buffer, decode, output): p50 {t50:.1} ms, p99 {t99:.1} ms over {} frames \
         ({} dropped {}, {} lost, {} ms added to catch up)",
        to_console.len(),
        heard["framesDropped"],
        heard["dropped"],
        heard["framesLost"],
        heard["catchUpMs"]
    );
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_call_from_the_console_is_answered_by_terminals_and_tallied() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (relay, chromium, _microphone) = start().await?;
    // Both guards are on duty and online when the call goes out.
    let guards = [
        conn(&relay, GUARD).connect().await?,
        conn(&relay, GUARD + 1).connect().await?,
    ];
    log_in(&chromium, &relay).await?;
    let browser = chromium.browser();
    browser
        .find(Locator::Css("#rollcall-text"))
        .await?
        .send_keys("All units on route 11: report status")
        .await?;
    chromium
        .js(&format!(
            "document.querySelector('input[data-rollcall-group=\"{GROUP}\"]').click(); \
             document.querySelector('#rollcall-ack').checked = true;"
        ))
        .await?;
    browser
        .find(Locator::Css("#rollcall-send"))
        .await?
        .click()
        .await?;
    let open = chromium
        .until("the roll call open", PATIENCE, STATE, |v| {
            v["rollCall"]["state"] == "open" && v["rollCall"]["total"] == 2
        })
        .await?;
    let alert = open["rollCall"]["alertId"]
        .as_u64()
        .context("the alert's id")?;

    // One guard answers from `ptt respond`: the tally counts it, and the
    // other is the one not answered.
    let respond = |id: u32, unable: bool| RespondArgs {
        conn: conn(&relay, id),
        alert,
        status: None,
        unable,
    };
    respond::run(&guards[0], &respond(GUARD, false)).await?;
    let tallied = chromium
        .until("one answer tallied", PATIENCE, TALLY, |v| {
            v["answered"] == 1
                && v["missing"] == serde_json::json!([GUARD + 1])
                && v["missing_shown"] == serde_json::json!([GUARD + 1])
        })
        .await?;
    println!("roll call after one answer: {tallied}");
    chromium.screenshot("console-rollcall.png").await?;
    respond::run(&guards[1], &respond(GUARD + 1, true)).await?;
    chromium
        .until("both answers tallied", PATIENCE, TALLY, |v| {
            v["answered"] == 2
                && v["missing"] == serde_json::json!([])
                && v["group_row"]
                    .as_str()
                    .is_some_and(|row| row.contains("2 / 2") || row.contains("2/2"))
        })
        .await?;
    for guard in guards {
        guard.close().await;
    }
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

/// The roll call as the page shows it: its model, and the group's tally row.
const TALLY: &str = r#"
    const call = window.pttConsole.rollCall;
    const row = document.querySelector('#rollcall-tally [data-tally-group="11"]');
    return {
        answered: call.answered,
        missing: call.missing,
        group_row: row ? row.textContent : null,
        missing_shown: [...document.querySelectorAll('#rollcall-missing li[data-terminal]')]
            .map((li) => Number(li.dataset.terminal)),
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrol_track_moves_its_marker_and_its_group_on_the_console() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Compound A (guards 301, 302) by the road at 0 m, compound B (guard
    // 311) at 250 m; patrol 201 leads group 31; the dispatcher is in the
    // control room, which gets every position.
    let directory = TestDirectory::new()
        .dispatcher(DISPATCHER)
        .group_with(1, "control-room", [DISPATCHER], &[])
        .patrol(31, 201, DISPATCHER)
        .compound(101, "Compound A", 0.0, &[301, 302], DISPATCHER)
        .compound(102, "Compound B", 250.0, &[311], DISPATCHER);
    let relay = TestRelay::start(&directory).await?;
    let guards = relay.connect_all([301, 302, 311]).await;
    let (chromium, dir) = chromium_with_tone().await?;
    log_in(&chromium, &relay).await?;

    // The patrol waits by compound A, drives to compound B and waits there.
    let point = |seconds: f64, east: f64| {
        let (lat, lon) = ptt_tests::geo::at(east, 0.0);
        format!("{seconds},{lat},{lon}\n")
    };
    let track = dir.path().join("patrol.csv");
    std::fs::write(
        &track,
        [
            point(0.0, 0.0),
            point(4.0, 0.0),
            point(8.0, 250.0),
            point(14.0, 250.0),
        ]
        .concat(),
    )?;
    let patrol = conn(&relay, 201).connect().await?;
    let track_args = TrackArgs {
        conn: conn(&relay, 201),
        file: track,
        speed: 1.0,
        interval: Duration::from_millis(500),
        repeat: false,
        seconds: None,
        verbose: false,
    };
    let driving = tokio::spawn(async move {
        let report = track::run(&patrol, &track_args, std::future::pending(), |_| {}).await;
        patrol.close().await;
        report
    });

    let at_a = chromium
        .until("the patrol by compound A", PATIENCE, PATROL, |v| {
            // The marker too: the regrouping may be drawn before the
            // patrol's first position is.
            v["members"] == serde_json::json!([301, 302])
                && v["regrouped"] == true
                && v["lon"].is_string()
        })
        .await?;
    chromium.screenshot("console-patrol.png").await?;
    let at_b = chromium
        .until(
            "the patrol by compound B",
            Duration::from_secs(20),
            PATROL,
            |v| v["members"] == serde_json::json!([311]) && v["lon"].is_string(),
        )
        .await?;
    let moved_east = |from: &Value, to: &Value| -> Option<f64> {
        Some(to["lon"].as_str()?.parse::<f64>().ok()? - from["lon"].as_str()?.parse::<f64>().ok()?)
    };
    let east = moved_east(&at_a, &at_b).context("the marker's positions")?;
    ensure!(east > 0.0, "the marker did not move east: {at_a} -> {at_b}");
    let report = driving.await??;
    ensure!(
        report.reports_sent >= 20,
        "{} reports sent",
        report.reports_sent
    );
    drop(guards);
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

/// The patrol's marker and group row as the page shows them.
const PATROL: &str = r#"
    const marker = document.querySelector('#map [data-terminal="201"]');
    const row = document.querySelector('#groups [data-group="31"]');
    return {
        lat: marker ? marker.dataset.lat : null,
        lon: marker ? marker.dataset.lon : null,
        regrouped: !!row && row.classList.contains('regrouped'),
        members: row ? [...row.querySelectorAll('li[data-member]')]
            .map((li) => Number(li.dataset.member)).sort((a, b) => a - b) : [],
    };
"#;

/// The demo district's centre (Line 1's start): where the simulated
/// terminals walk.
const DEMO_CENTRE: (f64, f64) = (30.240_62, 120.133_27);

/// The demo district's terminal that talks during the district measurement.
const TALKER: u32 = 101;

/// Metres per degree of latitude, for the walk.
const METRES_PER_DEGREE: f64 = ptt_tests::geo::METRES_PER_DEGREE;

/// What the page's own performance timeline and heap say, installed after
/// login: every frame's interval (requestAnimationFrame), every long task
/// (> 50 ms, PerformanceObserver), and the JS heap every 10 s.
const INSTALL_PERF: &str = r#"
    const perf = window.__perf = { frames: [], longTasks: [], heap: [] };
    new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) perf.longTasks.push(entry.duration);
    }).observe({ entryTypes: ['longtask'] });
    let last = performance.now();
    const frame = (now) => {
        perf.frames.push(now - last);
        last = now;
        requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    const sample = () => perf.heap.push(performance.memory.usedJSHeapSize);
    sample();
    setInterval(sample, 10000);
"#;

/// The console over the whole demo district (59 groups, 148 terminals):
/// every other terminal online and reporting a position each second (a
/// random walk around the district's centre), one of them talking in a
/// loop, for `CONSOLE_MEASURE_SECONDS` (default 120). Reports the page's
/// frame intervals, long tasks and JS heap from Chromium's own timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (2 min by default): cargo test -p ptt-tests --test ops measure_console_under -- --ignored --nocapture"]
async fn measure_console_under_the_whole_district() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("CONSOLE_MEASURE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let _serial = ONE_AT_A_TIME.lock().await;
    let relay = TestRelay::start_with(&TestDirectory::new(), |config| {
        config.directory = None;
    })
    .await?;
    let terminals: Value = reqwest::get(format!("http://{}/api/v1/terminals", relay.ops))
        .await?
        .json()
        .await?;
    let ids: Vec<u32> = terminals["terminals"]
        .as_array()
        .context("terminals")?
        .iter()
        .filter_map(|t| t["id"].as_u64().and_then(|id| u32::try_from(id).ok()))
        // The talker logs in once, below: a second log-in would replace it.
        .filter(|&id| id != DISPATCHER && id != TALKER)
        .collect();
    let groups = terminals["terminals"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == TALKER))
        .map(|t| t["groups"].clone());
    println!(
        "demo district: {} terminals walking besides the console and the talker ({TALKER}, in {groups:?})",
        ids.len()
    );

    let (chromium, _microphone) = chromium_with_tone().await?;
    let browser = chromium.browser();
    browser
        .goto(&format!("http://{}/console", relay.ops))
        .await?;
    for (field, text) in [("#terminal-id", "1"), ("#secret", "demo-1")] {
        browser
            .find(Locator::Css(field))
            .await?
            .send_keys(text)
            .await?;
    }
    browser
        .find(Locator::Css("#login-button"))
        .await?
        .click()
        .await?;
    chromium
        .until("the console online", PATIENCE, STATE, |v| {
            v["state"] == "online"
        })
        .await?;
    chromium.js(INSTALL_PERF).await?;

    // Every terminal walks and reports once a second.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut walkers = tokio::task::JoinSet::new();
    for (n, id) in ids.iter().copied().enumerate() {
        let (addr, cert, stop) = (relay.addr, relay.cert.clone(), stop.clone());
        walkers.spawn(async move {
            let secret = format!("demo-{id}");
            let Ok(Ok(mut client)) = Client::login(addr, &cert, id, secret.as_bytes()).await else {
                return 0u64;
            };
            let mut reports = 0;
            let (mut north, mut east) = (
                (n % 12) as f64 * 150.0 - 900.0,
                (n / 12) as f64 * 150.0 - 900.0,
            );
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            while !stop.is_cancelled() {
                ticker.tick().await;
                north += ((n * 7 + reports as usize) % 11) as f64 - 5.0;
                east += ((n * 3 + reports as usize) % 13) as f64 - 6.0;
                let latitude_deg = DEMO_CENTRE.0 + north / METRES_PER_DEGREE;
                let longitude_deg =
                    DEMO_CENTRE.1 + east / (METRES_PER_DEGREE * DEMO_CENTRE.0.to_radians().cos());
                let report = Request::LocationReport(pb::LocationReport {
                    latitude_deg,
                    longitude_deg,
                    accuracy_m: 5.0,
                    ..Default::default()
                });
                if client.send(report).await.is_err() {
                    break;
                }
                reports += 1;
            }
            client.close().await;
            reports
        });
    }
    // Officer 101 talks in its squad's group, 2 s on, 2 s off.
    let mut talker = Client::login(relay.addr, &relay.cert, TALKER, b"demo-101").await?;
    let talker = match talker {
        Ok(ref mut client) => client,
        Err(error) => anyhow::bail!("{TALKER} refused: {error:?}"),
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut bursts = 0u32;
    while tokio::time::Instant::now() < end {
        if let Some(burst) = ptt_tests::client::granted(&talker.press(11).await?) {
            talk_tone(talker, 11, burst, 2.0).await?;
            talker.release(11).await?;
            bursts += 1;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.cancel();
    let mut reports = 0;
    while let Some(sent) = walkers.join_next().await {
        reports += sent.unwrap_or(0);
    }
    // The console must still be online and hearing: a session that died
    // mid-run would make the figures below look cheap.
    let end_state = chromium.js(STATE).await?;
    let heard = &end_state["groups"]["11"];
    println!(
        "console {}, group 11: {} frames decoded, {} dropped {}, {} lost, {} ms of catch-up; voice {}",
        end_state["state"],
        heard["framesDecoded"],
        heard["framesDropped"],
        heard["dropped"],
        heard["framesLost"],
        heard["catchUpMs"],
        end_state["voice"]
    );
    ensure!(
        end_state["state"] == "online",
        "the console went {}: {}",
        end_state["state"],
        end_state["lastError"]
    );
    let perf = chromium.js("return window.__perf;").await?;
    let mut frames: Vec<f64> = serde_json::from_value(perf["frames"].clone())?;
    let long_tasks: Vec<f64> = serde_json::from_value(perf["longTasks"].clone())?;
    let heap: Vec<f64> = serde_json::from_value(perf["heap"].clone())?;
    let markers = chromium
        .js("return document.querySelectorAll('#map [data-terminal]').length;")
        .await?;
    chromium.screenshot("console-district.png").await?;
    let frame_count = frames.len();
    let (f50, f99) = percentiles(&mut frames);
    let worst = frames.last().copied().unwrap_or_default();
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    println!(
        "{seconds} s, {reports} position reports, {bursts} bursts, {markers} markers on the map"
    );
    println!(
        "frames: {frame_count}, interval p50 {f50:.1} ms, p99 {f99:.1} ms, worst {worst:.1} ms; long tasks (> 50 ms): {} totalling {:.0} ms",
        long_tasks.len(),
        long_tasks.iter().sum::<f64>() + 0.0
    );
    println!(
        "JS heap: first {:.1} MiB, last {:.1} MiB, samples {:?}",
        mib(heap.first().copied().unwrap_or_default()),
        mib(heap.last().copied().unwrap_or_default()),
        heap.iter()
            .map(|&b| (mib(b) * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_a_terminal_to_a_group_from_the_console() -> anyhow::Result<()> {
    const TOKEN: &str = "operator-token-0123456789";
    const NEWCOMER: u32 = 200;
    let _serial = ONE_AT_A_TIME.lock().await;
    let relay = TestRelay::start_with(&district().guards([NEWCOMER]), |config| {
        config.admin_token = Some(TOKEN.parse().expect("token"));
    })
    .await?;
    let (chromium, _microphone) = chromium_with_tone().await?;
    log_in(&chromium, &relay).await?;
    let mut newcomer = Client::connect(relay.addr, &relay.cert, NEWCOMER).await?;

    // Without the token the page offers no operator actions; a wrong one
    // is refused.
    let browser = chromium.browser();
    let token_field = browser.find(Locator::Css("#operator-token")).await?;
    token_field.send_keys("not-the-token-0123456789\n").await?;
    chromium
        .until("the wrong token refused", PATIENCE, OPERATOR, |v| {
            v["token"] == "refused"
        })
        .await?;
    token_field.clear().await?;
    token_field.send_keys(&format!("{TOKEN}\n")).await?;
    chromium
        .until("operator actions on", PATIENCE, OPERATOR, |v| {
            v["token"] == "on"
        })
        .await?;

    // The operator adds the newcomer to group 11 from the group's row.
    chromium
        .js(&format!(
            "document.querySelector('#groups [data-group=\"{GROUP}\"] .add-member').click();"
        ))
        .await?;
    browser
        .find(Locator::Css(&format!(
            "#groups [data-group=\"{GROUP}\"] input.add-member-id"
        )))
        .await?
        .send_keys(&format!("{NEWCOMER}\n"))
        .await?;
    let shown = chromium
        .until("the newcomer in the group's row", PATIENCE, OPERATOR, |v| {
            v["members"] == serde_json::json!([NEWCOMER])
        })
        .await?;
    println!("operator add: {shown}");
    chromium.screenshot("console-operator.png").await?;
    // The relay made it so: the terminal is told it joined group 11.
    let regrouped = newcomer
        .expect_body(|b| match b {
            Body::Regrouped(r) if r.group_id == GROUP => Some(r.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(regrouped.terminal_id, NEWCOMER);
    assert_eq!(regrouped.change(), pb::RegroupChange::Added);
    assert_eq!(regrouped.reason(), pb::RegroupReason::Admin);
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}

/// The operator field's state and group 11's added members.
const OPERATOR: &str = r#"
    const state = document.querySelector('#operator-token-state');
    const row = document.querySelector('#groups [data-group="11"]');
    return {
        token: state ? state.dataset.state : null,
        members: row ? [...row.querySelectorAll('li[data-member].admin')]
            .map((li) => Number(li.dataset.member)) : [],
        error: window.pttConsole.lastError,
    };
"#;

/// A tile server on loopback, as a site might run: every tile an SVG with
/// its border and its `z/x/y` written on it; every tile asked for noted.
async fn tile_server() -> anyhow::Result<(std::net::SocketAddr, TilesAsked)> {
    use axum::extract::{Path, State};
    use axum::http::header::CONTENT_TYPE;
    let asked = TilesAsked::default();
    let routes = axum::Router::new()
        .route(
            "/tiles/{z}/{x}/{y}",
            axum::routing::get(
                |State(asked): State<TilesAsked>, Path((z, x, y)): Path<(u32, u32, u32)>| async move {
                    asked.lock().expect("tiles asked").push(format!("{z}/{x}/{y}"));
                    let svg = format!(
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"256\" height=\"256\">\
                         <rect width=\"256\" height=\"256\" fill=\"#1d2a36\" stroke=\"#4b6a88\"/>\
                         <text x=\"8\" y=\"22\" fill=\"#8fb3d9\" font-size=\"16\">{z}/{x}/{y}</text></svg>"
                    );
                    ([(CONTENT_TYPE, "image/svg+xml")], svg)
                },
            ),
        )
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, routes).await });
    Ok((addr, asked))
}

/// The tiles a [`tile_server`] was asked for, as `z/x/y`.
type TilesAsked = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The Web-Mercator tile (slippy-map numbering) holding `lat`, `lon` at
/// level `z`, with where in it the point lies (0..1 from its west and north
/// edges).
fn mercator_tile(lat: f64, lon: f64, z: u32) -> ((u32, u32), (f64, f64)) {
    let n = f64::from(2u32.pow(z));
    let x = (lon + 180.0) / 360.0 * n;
    let r = lat.to_radians();
    let y = (1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    ((x as u32, y as u32), (x.fract(), y.fract()))
}

/// The map's tiles, compound A's circle and the tile credit, as the page has them.
const TILES: &str = r#"
    const tiles = [...document.querySelectorAll('#map .tiles image')].map((img) => ({
        key: img.dataset.tile,
        loaded: img.dataset.loaded === 'true',
        x: Number(img.getAttribute('x')),
        y: Number(img.getAttribute('y')),
        width: Number(img.getAttribute('width')),
        height: Number(img.getAttribute('height')),
    }));
    const zone = document.querySelector('#map [data-zone="101"]');
    return {
        tiles,
        zone: zone ? { cx: Number(zone.getAttribute('cx')), cy: Number(zone.getAttribute('cy')) } : null,
        credit: document.querySelector('#map-tiles').textContent,
        error: window.pttConsole.lastError,
    };
"#;

/// A site with a tile server (`console-tiles`) gets streets under the
/// zones: the page's policy lets it load the tiles from that other origin,
/// every tile it shows comes from the server, and a compound's circle lands
/// where the Web-Mercator numbering (computed here) says it must, to within
/// 2 % of a tile. The backup-call circle of an emergency there has the
/// relay's configured radius.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_draws_a_sites_tiles_under_its_zones() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (tiles, asked) = tile_server().await?;
    let template = format!("http://{tiles}/tiles/{{z}}/{{x}}/{{y}}");
    let directory = TestDirectory::new()
        .dispatcher(DISPATCHER)
        .group_with(1, "control-room", [DISPATCHER], &[])
        .compound(101, "Compound A", 0.0, &[301, 302], DISPATCHER)
        .compound(102, "Compound B", 250.0, &[311], DISPATCHER);
    let relay = TestRelay::start_with(&directory, |config| {
        config.console_tiles = Some(template.parse().expect("a tile URL"));
        config.backup_radius_m = 250;
    })
    .await?;
    let console: Value = reqwest::get(format!("http://{}/api/v1/console", relay.ops))
        .await?
        .json()
        .await?;
    assert_eq!(console["tiles"], template.as_str());
    // The map draws the relay's own backup-call radius.
    assert_eq!(console["backup_radius_m"], 250.0);
    let (chromium, _microphone) = chromium_with_tone().await?;
    log_in(&chromium, &relay).await?;

    let shown = chromium
        .until("the tiles loaded", PATIENCE, TILES, |v| {
            v["zone"].is_object()
                && v["tiles"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["loaded"] == true))
        })
        .await?;
    chromium.screenshot("console-tiles.png").await?;
    assert_eq!(shown["credit"], format!("tiles: {tiles}").as_str());
    let on_page: Vec<&str> = shown["tiles"]
        .as_array()
        .context("tiles")?
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    let asked = asked.lock().expect("tiles asked").clone();
    for key in &on_page {
        ensure!(
            asked.iter().any(|a| a == key),
            "{key} shown but never asked for: {asked:?}"
        );
    }
    // A few hundred metres fill the map: street level.
    let z: u32 = on_page[0].split('/').next().context("level")?.parse()?;
    ensure!((15..=19).contains(&z), "level {z} for a 400 m district");

    // Compound A's centre is in the tile the numbering gives, where it gives.
    let (lat, lon) = ptt_tests::geo::at(0.0, 100.0);
    let ((x, y), (east, south)) = mercator_tile(lat, lon, z);
    let key = format!("{z}/{x}/{y}");
    let tile = shown["tiles"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["key"] == key.as_str()))
        .with_context(|| format!("tile {key} for compound A not on the page: {on_page:?}"))?;
    let number = |v: &Value, field: &str| v[field].as_f64().context("a number");
    let along = (number(&shown["zone"], "cx")? - number(tile, "x")?) / number(tile, "width")?;
    let down = (number(&shown["zone"], "cy")? - number(tile, "y")?) / number(tile, "height")?;
    ensure!(
        (along - east).abs() < 0.02 && (down - south).abs() < 0.02,
        "compound A at ({along:.3}, {down:.3}) of its tile, the numbering says ({east:.3}, {south:.3})"
    );
    println!(
        "{} tiles at level {z}; compound A at ({along:.3}, {down:.3}) of {key}, expected ({east:.3}, {south:.3})",
        on_page.len()
    );
    ensure!(shown["error"].is_null(), "the page said {}", shown["error"]);

    // A guard at compound A declares an emergency: the map's backup-call
    // circle has the relay's radius, not the page's default.
    let mut guard = Client::connect(relay.addr, &relay.cert, 301).await?;
    guard.send(ptt_tests::geo::location(0.0, 100.0)).await?;
    chromium
        .until(
            "the guard on the map",
            PATIENCE,
            "return !!document.querySelector('#map [data-terminal=\"301\"]');",
            |v| v == true,
        )
        .await?;
    guard
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: 101,
            text: "Intruder at compound A".into(),
        }))
        .await?;
    chromium
        .until(
            "the backup-call circle",
            PATIENCE,
            "const c = document.querySelector('#map circle.backup-radius'); \
             return c ? c.dataset.radiusM : null;",
            |v| v == "250",
        )
        .await?;
    chromium.close().await?;
    relay.stop().await?;
    Ok(())
}
