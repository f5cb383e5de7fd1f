//! Zone logic through the real relay: a relay patrol walking past compounds along a
//! simulated GPS track picks up and lets go of their guards in order without flapping,
//! and a backup call pulls in exactly the guards within the radius and lets them go on
//! clear. Also the two latencies the issue asks for, printed: location report → regroup
//! notification, and emergency press → first neighbouring guard hearing the caller.

use std::time::{Duration, Instant};

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::geo::location;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

/// Three compounds along a road (A at 0 m, B at 500 m, C at 1000 m) and one just off it
/// (D at 300 m), each with its guards; patrol 201 leads group 31; dispatcher 1.
/// Guard 312 is off duty; the enterprise groups are 101–104 with zones 101–104.
fn district() -> TestDirectory {
    let compounds = [
        (101, "Compound A", 0.0, [301, 302]),
        (102, "Compound B", 500.0, [311, 312]),
        (103, "Compound C", 1000.0, [321, 322]),
        (104, "Compound D", 300.0, [331, 332]),
    ];
    let mut directory = TestDirectory::new()
        .dispatcher(1)
        .group_with(1, "control-room", [1], &[])
        .patrol(31, 201, 1);
    for (zone, name, east, guards) in compounds {
        directory = directory.compound(zone, name, east, &guards, 1);
    }
    directory.off_duty(312)
}

/// (`+`/`-`, terminal, group, reason, zone) of a `Regrouped`.
type Change = (char, u32, u32, pb::RegroupReason, String);

fn regrouped(body: &Body) -> Option<Change> {
    let Body::Regrouped(r) = body else {
        return None;
    };
    let sign = if r.change == i32::from(pb::RegroupChange::Added) {
        '+'
    } else {
        '-'
    };
    let reason = pb::RegroupReason::try_from(r.reason).unwrap_or_default();
    Some((sign, r.terminal_id, r.group_id, reason, r.zone.clone()))
}

/// Prints p50, p95 and max of `samples` (the figures of the closing note).
fn print_latency(what: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let ms = |at: usize| samples[at.min(samples.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{what}, {} samples: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        samples.len(),
        ms(samples.len() / 2),
        ms(samples.len() * 95 / 100),
        ms(samples.len() - 1),
    );
}

/// A picker of the `Regrouped` messages about `terminal` only (a listener of the group
/// is also told about the others).
fn regrouped_of(terminal: u32) -> impl Fn(&Body) -> Option<Change> {
    move |body| regrouped(body).filter(|change| change.1 == terminal)
}

/// Every `Regrouped` that arrives at `client` within `wait` of the last one.
async fn drain_regroups(client: &mut Client, wait: Duration) -> anyhow::Result<Vec<Change>> {
    let mut out = Vec::new();
    while let Some(message) = client
        .expect_within(wait, |m| m.body.as_ref().and_then(regrouped).is_some())
        .await?
    {
        out.extend(message.body.as_ref().and_then(regrouped));
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_patrol_picks_up_each_compound_in_turn_without_flapping() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    // 322 stays offline: it is still added (its radio joins when it logs in).
    let mut clients = relay.connect_all([1, 201, 301, 302, 311, 321]).await;
    let mut guard_c = clients.pop().expect("321");
    let mut guard_b = clients.pop().expect("311");
    let _guard_a2 = clients.pop().expect("302");
    let mut guard_a = clients.pop().expect("301");
    let mut lead = clients.pop().expect("201");
    let mut dispatcher = clients.pop().expect("1");

    // The lead walks the road east in 10 m steps, 300 m before A to 300 m after C.
    let mut heard_in_patrol = false;
    for metres in (-300..=1300).step_by(10) {
        let answer = lead.request(location(f64::from(metres), 0.0)).await?;
        assert!(matches!(answer, Body::Ack(_)), "{answer:?}");
        if metres == 0 {
            // A's guards are in the patrol now: they hear the lead.
            let change = guard_a.expect_body(regrouped_of(301)).await?;
            assert_eq!(
                change,
                (
                    '+',
                    301,
                    31,
                    pb::RegroupReason::ZoneEntered,
                    "Compound A".into()
                )
            );
            let burst = granted(&lead.press(31).await?).expect("the lead talks");
            lead.send_datagram(opus::datagram(31, burst, 0, 0))?;
            let voice = guard_a
                .recv_voice(Duration::from_secs(5))
                .await
                .expect("guard of A hears the patrol");
            assert_eq!((voice.header.group_id, voice.header.talker_id), (31, 201));
            lead.release(31).await?;
            heard_in_patrol = true;
        }
    }
    assert!(heard_in_patrol);

    // The control room saw every change, in order, once each (it is also a listener of
    // the patrol group, and is told once).
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(500)).await?;
    let summary: Vec<String> = seen
        .iter()
        .map(|(sign, terminal, group, _, zone)| format!("{sign}{terminal}@{group} {zone}"))
        .collect();
    assert_eq!(
        summary,
        [
            "+301@31 Compound A",
            "+302@31 Compound A",
            "-301@31 Compound A",
            "-302@31 Compound A",
            // D's edge is 50 m from the road at 300 m: picked up between A and B.
            "+331@31 Compound D",
            "+332@31 Compound D",
            "-331@31 Compound D",
            "-332@31 Compound D",
            // B: 312 is off duty and stays out.
            "+311@31 Compound B",
            "-311@31 Compound B",
            "+321@31 Compound C",
            "+322@31 Compound C",
            "-321@31 Compound C",
            "-322@31 Compound C",
        ],
        "membership follows the lead along the road"
    );
    let reasons: Vec<pb::RegroupReason> = seen.iter().map(|c| c.3).collect();
    assert!(
        reasons[..2]
            .iter()
            .all(|r| *r == pb::RegroupReason::ZoneEntered)
    );
    assert_eq!(reasons[2], pb::RegroupReason::ZoneLeft);

    // Each guard was told its own changes: B's on-duty guard in and out once.
    let b = drain_regroups(&mut guard_b, Duration::from_millis(200)).await?;
    let b: Vec<(char, u32)> = b
        .iter()
        .filter(|c| c.1 == 311)
        .map(|c| (c.0, c.2))
        .collect();
    assert_eq!(b, [('+', 31), ('-', 31)]);
    guard_c.clear();
    guard_a.clear();
    dispatcher.clear();

    // Back at C's boundary, the lead's fixes jitter across the approach distance (45.8 m
    // along the road from C's centre) by ±17 m: C's guards join once and stay.
    for k in 0..40 {
        let east = if k % 2 == 0 { 1030.0 } else { 1063.0 };
        lead.request(location(east, 0.0)).await?;
    }
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(500)).await?;
    let summary: Vec<String> = seen
        .iter()
        .map(|(sign, terminal, _, _, _)| format!("{sign}{terminal}"))
        .collect();
    assert_eq!(summary, ["+321", "+322"], "no flapping on the boundary");
    let own = drain_regroups(&mut guard_c, Duration::from_millis(200)).await?;
    let own: Vec<&Change> = own.iter().filter(|c| c.1 == 321).collect();
    assert_eq!(own.len(), 1, "guard 321 told once: {own:?}");
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_report_to_regroup_notification_latency() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let mut clients = relay.connect_all([201, 301]).await;
    let mut guard = clients.pop().expect("301");
    let mut lead = clients.pop().expect("201");
    lead.request(location(-1000.0, 0.0)).await?;
    let mut samples = Vec::new();
    for _ in 0..20 {
        for (east, sign) in [(0.0, '+'), (-1000.0, '-')] {
            let sent = Instant::now();
            lead.send(location(east, 0.0)).await?;
            let change = guard.expect_body(regrouped_of(301)).await?;
            samples.push(sent.elapsed());
            assert_eq!((change.0, change.2), (sign, 31));
        }
    }
    print_latency("location report → Regrouped at the guard", samples);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_call_pulls_in_the_guards_within_the_radius_and_dissolves_on_clear()
-> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let mut clients = relay.connect_all([1, 301, 302, 311, 331, 332]).await;
    let near2 = clients.pop().expect("332");
    let mut near = clients.pop().expect("331");
    let mut far = clients.pop().expect("311");
    let partner = clients.pop().expect("302");
    let mut caller = clients.pop().expect("301");
    let mut dispatcher = clients.pop().expect("1");

    // The guard of A reports its position at A's gate, then presses emergency in its
    // own group. D's premises are 250 m away (inside the 400 m radius); B's 450 m.
    caller.request(location(0.0, 50.0)).await?;
    dispatcher.clear();
    let pressed = Instant::now();
    let answer = caller
        .press_with(101, pb::Priority::Emergency, pb::FloorKind::Emergency)
        .await?;
    let burst = granted(&answer).expect("emergency granted at once");
    // The caller talks at once, a frame every 20 ms, until D's first guard hears it.
    let mut sequence = 0u16;
    let heard = loop {
        caller.send_datagram(opus::datagram(
            101,
            burst,
            sequence,
            u64::from(sequence) * 20_000,
        ))?;
        sequence += 1;
        if let Some(voice) = near.recv_voice(Duration::from_millis(20)).await {
            break voice;
        }
        anyhow::ensure!(
            sequence < 250,
            "the neighbouring guard never heard the caller"
        );
    };
    let press_to_ear = pressed.elapsed();
    assert_eq!((heard.header.group_id, heard.header.talker_id), (101, 301));
    println!(
        "emergency press → first neighbouring guard hears the caller: {:.2} ms",
        press_to_ear.as_secs_f64() * 1000.0
    );
    let told = near.expect_body(regrouped_of(331)).await?;
    assert_eq!(
        told,
        (
            '+',
            331,
            101,
            pb::RegroupReason::EmergencyBackup,
            "Compound D".into()
        )
    );
    // The caller goes on talking: everyone in the call hears it.
    for _ in 0..10 {
        caller.send_datagram(opus::datagram(
            101,
            burst,
            sequence,
            u64::from(sequence) * 20_000,
        ))?;
        sequence += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(near2.recv_voice(Duration::from_secs(2)).await.is_some());
    assert!(partner.recv_voice(Duration::from_secs(2)).await.is_some());
    // B is outside the radius: nothing.
    assert!(far.recv_voice(Duration::from_millis(300)).await.is_none());
    assert!(
        drain_regroups(&mut far, Duration::from_millis(100))
            .await?
            .is_empty()
    );

    // The control room: the emergency, the caller's position, who joined.
    let state = dispatcher
        .expect_body(|b| match b {
            Body::EmergencyState(s) => Some(s.clone()),
            _ => None,
        })
        .await?;
    assert!(state.active && state.declared_by == 301);
    let position = dispatcher
        .expect_body(|b| match b {
            Body::LocationReport(r) => Some(*r),
            _ => None,
        })
        .await?;
    assert_eq!(position.terminal_id, 301);
    let joined = drain_regroups(&mut dispatcher, Duration::from_millis(300)).await?;
    let joined: Vec<(char, u32)> = joined.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(joined, [('+', 331), ('+', 332)]);
    // The caller, a listener of the group, sees who came to back it up
    // (ptt.proto, `Regrouped`: the group's other listeners are told).
    let came = drain_regroups(&mut caller, Duration::from_millis(300)).await?;
    let came: Vec<(char, u32)> = came.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(came, [('+', 331), ('+', 332)]);

    // The dispatcher clears: the pulled-in guards leave, the compound's own stay.
    caller.release(101).await?;
    let cleared = dispatcher
        .request(Request::EmergencyClear(pb::EmergencyClear {
            group_id: 101,
        }))
        .await?;
    assert!(
        matches!(cleared, Body::EmergencyState(ref s) if !s.active),
        "{cleared:?}"
    );
    let left = near.expect_body(regrouped_of(331)).await?;
    assert_eq!(
        left,
        (
            '-',
            331,
            101,
            pb::RegroupReason::EmergencyCleared,
            "Compound D".into()
        )
    );
    let left = drain_regroups(&mut dispatcher, Duration::from_millis(300)).await?;
    let left: Vec<(char, u32)> = left.iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(left, [('-', 331), ('-', 332)]);
    while near.recv_voice(Duration::from_millis(50)).await.is_some() {}
    let burst = granted(&caller.press(101).await?).expect("routine talk after the clear");
    caller.send_datagram(opus::datagram(101, burst, 0, 0))?;
    assert!(partner.recv_voice(Duration::from_secs(2)).await.is_some());
    assert!(
        near.recv_voice(Duration::from_millis(300)).await.is_none(),
        "a guard let go no longer hears the group"
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_out_of_range_is_refused() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let mut lead = Client::connect(relay.addr, &relay.cert, 201).await?;
    let answer = lead
        .request(Request::LocationReport(pb::LocationReport {
            latitude_deg: 91.0,
            longitude_deg: 0.0,
            ..Default::default()
        }))
        .await?;
    assert!(
        matches!(answer, Body::Error(ref e) if e.reason == i32::from(pb::ErrorReason::Malformed)),
        "{answer:?}"
    );
    let answer = lead.request(location(0.0, 0.0)).await?;
    assert!(
        matches!(answer, Body::Ack(_)),
        "a valid position is taken: {answer:?}"
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_press_to_neighbouring_guard_hearing_latency() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let mut clients = relay.connect_all([1, 301, 331]).await;
    let mut near = clients.pop().expect("331");
    let mut caller = clients.pop().expect("301");
    let mut dispatcher = clients.pop().expect("1");
    caller.request(location(0.0, 50.0)).await?;
    let mut samples = Vec::new();
    for _ in 0..10 {
        let pressed = Instant::now();
        let answer = caller
            .press_with(101, pb::Priority::Emergency, pb::FloorKind::Emergency)
            .await?;
        let burst = granted(&answer).expect("emergency granted");
        // Frames every 2 ms from the grant (a client sends what it buffered since the
        // press at once): the figure is the relay's share plus at most 2 ms.
        let mut sequence = 0u16;
        loop {
            caller.send_datagram(opus::datagram(101, burst, sequence, u64::from(sequence)))?;
            sequence += 1;
            if near.recv_voice(Duration::from_millis(2)).await.is_some() {
                break;
            }
            anyhow::ensure!(
                sequence < 2_000,
                "the neighbouring guard never heard the caller"
            );
        }
        samples.push(pressed.elapsed());
        caller.release(101).await?;
        dispatcher
            .request(Request::EmergencyClear(pb::EmergencyClear {
                group_id: 101,
            }))
            .await?;
        let left = near.expect_body(regrouped_of(331)).await?;
        let left = if left.0 == '+' {
            near.expect_body(regrouped_of(331)).await?
        } else {
            left
        };
        assert_eq!(left.0, '-');
        while near.recv_voice(Duration::from_millis(20)).await.is_some() {}
        near.clear();
        dispatcher.clear();
    }
    print_latency(
        "emergency press → neighbouring guard hears the caller",
        samples,
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_in_a_patrol_keeps_its_guards_and_an_offline_lead_lets_them_go()
-> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let mut clients = relay.connect_all([1, 201, 301]).await;
    let mut guard = clients.pop().expect("301");
    let mut lead = clients.pop().expect("201");
    let mut dispatcher = clients.pop().expect("1");
    let changes = |seen: Vec<Change>| -> Vec<String> {
        seen.iter()
            .map(|(sign, terminal, _, reason, _)| format!("{sign}{terminal} {reason:?}"))
            .collect()
    };

    lead.request(location(0.0, 0.0)).await?;
    guard.expect_body(regrouped_of(301)).await?;
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(300)).await?;
    assert_eq!(changes(seen), ["+301 ZoneEntered", "+302 ZoneEntered"]);

    // A guard the patrol picked up calls an emergency in the patrol group; the
    // patrol moves on, but the guards stay until the emergency is cleared.
    let answer = guard
        .press_with(31, pb::Priority::Emergency, pb::FloorKind::Emergency)
        .await?;
    assert!(granted(&answer).is_some(), "{answer:?}");
    lead.request(location(-1000.0, 0.0)).await?;
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(300)).await?;
    assert!(seen.is_empty(), "nobody dropped mid-emergency: {seen:?}");
    guard.release(31).await?;
    dispatcher
        .request(Request::EmergencyClear(pb::EmergencyClear { group_id: 31 }))
        .await?;
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(300)).await?;
    assert_eq!(
        changes(seen),
        ["-301 EmergencyCleared", "-302 EmergencyCleared"]
    );

    // The lead comes back, then its radio goes offline: the patrol lets go.
    lead.request(location(0.0, 0.0)).await?;
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(300)).await?;
    assert_eq!(changes(seen), ["+301 ZoneEntered", "+302 ZoneEntered"]);
    lead.close().await;
    let seen = drain_regroups(&mut dispatcher, Duration::from_millis(500)).await?;
    assert_eq!(changes(seen), ["-301 ZoneLeft", "-302 ZoneLeft"]);
    relay.stop().await?;
    Ok(())
}
