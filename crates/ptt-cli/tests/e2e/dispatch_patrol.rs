//! A relay patrol against a real relay on loopback: its lead walked with
//! `ptt track` past three compounds whose guards join and leave in order.

use crate::common;

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use common::{PATIENCE, Relay, drain, terminal_toml};
use ptt_cli::cli::track::{self, TrackArgs};
use ptt_client::{Client, Event, Events};
use ptt_proto::pb;

const DISPATCHER: u32 = 1;

/// Metres per degree of latitude on the mean sphere (as the relay computes).
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
const ORIGIN_LAT: f64 = 30.0;
const ORIGIN_LON: f64 = 120.0;
const PATROL: u32 = 31;
const LEAD: u32 = 201;
/// Compounds along the road: (zone and enterprise group, name, metres east
/// of the origin, guards). Each is a 50 m circle 100 m north of the road.
const COMPOUNDS: [(u32, &str, f64, &[u32]); 3] = [
    (101, "Compound A", 0.0, &[301, 302]),
    (102, "Compound B", 500.0, &[311]),
    (103, "Compound C", 1000.0, &[321]),
];
/// Guards join within this of their premises' edge...
const APPROACH_M: f64 = 60.0;
/// ...and leave beyond approach + this.
const HYSTERESIS_M: f64 = 30.0;

/// The position `east` metres along the road (which runs east at 30° N).
fn on_road(east: f64) -> (f64, f64) {
    (
        ORIGIN_LAT,
        ORIGIN_LON + east / (METRES_PER_DEGREE * ORIGIN_LAT.to_radians().cos()),
    )
}

/// Metres along the road of a longitude.
fn east_of(lon: f64) -> f64 {
    (lon - ORIGIN_LON) * METRES_PER_DEGREE * ORIGIN_LAT.to_radians().cos()
}

/// How far along the road (either side of a compound's centre) the lead
/// is within the approach distance of its edge.
fn approach_along_road() -> f64 {
    ((50.0 + APPROACH_M).powi(2) - 100.0_f64.powi(2)).sqrt()
}

/// Patrol 31 led by 201 along the road; enterprises 101–103 with their
/// premises zones and guards.
fn patrol_directory_toml() -> String {
    let mut out = terminal_toml(DISPATCHER, "Console", "dispatcher", "dispatcher");
    out.push_str(&terminal_toml(LEAD, "Moto 1", "patrol", "normal"));
    for (_, _, _, guards) in COMPOUNDS {
        for &id in guards {
            out.push_str(&terminal_toml(
                id,
                &format!("Guard {id}"),
                "guard",
                "normal",
            ));
        }
    }
    let _ = write!(
        out,
        "[[group]]\nid = {PATROL}\nname = \"Trunk Road 1\"\nkind = \"patrol-route\"\n\
         lead = {LEAD}\napproach-m = {APPROACH_M}\nhysteresis-m = {HYSTERESIS_M}\n\
         members = [{{ terminal = {DISPATCHER} }}, {{ terminal = {LEAD} }}]\n\n"
    );
    for (zone, name, east, guards) in COMPOUNDS {
        let (lat, lon) = on_road(east);
        let lat = lat + 100.0 / METRES_PER_DEGREE;
        let _ = write!(
            out,
            "[[zone]]\nid = {zone}\nname = \"{name}\"\nkind = \"premises\"\n\
             circle = {{ lat = {lat}, lon = {lon}, radius-m = 50 }}\n\n\
             [[group]]\nid = {zone}\nname = \"{name} guards\"\nkind = \"enterprise\"\nzone = {zone}\n\n\
             [[group.members]]\nterminal = {DISPATCHER}\n\n"
        );
        for id in guards {
            let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
        }
    }
    out
}

/// The lead's track: (track seconds, metres east). 20 m/s on the road,
/// ten seconds at each compound; before C the lead's fix jitters across
/// the approach distance (37 m and 70 m short of C's centre, the boundary
/// being at 45.8 m) for twenty seconds, then it passes C and leaves.
fn patrol_track() -> Vec<(f64, f64)> {
    let mut points = vec![
        (0.0, -150.0),
        (7.5, 0.0),
        (17.5, 0.0),
        (42.5, 500.0),
        (52.5, 500.0),
    ];
    for k in 0..=10 {
        let east = if k % 2 == 0 { 930.0 } else { 963.0 };
        points.push((74.0 + 2.0 * f64::from(k), east));
    }
    points.extend([(97.0, 1000.0), (107.0, 1000.0), (115.0, 1150.0)]);
    points
}

/// What one guard's client saw of itself and the patrol group: each
/// `Regrouped` about itself as (`+`/`-`, zone), with whether `joined()`
/// had the patrol group when the event arrived.
async fn watch_guard(
    guard: Client,
    mut events: Events,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<(char, String, bool)>> {
    let me = guard.terminal_id();
    let mut seen = Vec::new();
    let mut note = |event: Event| {
        if let Event::Regrouped(r) = event
            && r.terminal_id == me
            && r.group_id == PATROL
        {
            let sign = if r.change == i32::from(pb::RegroupChange::Added) {
                '+'
            } else {
                '-'
            };
            seen.push((sign, r.zone.clone(), guard.joined().contains(&PATROL)));
        }
    };
    loop {
        tokio::select! {
            event = events.recv() => note(event.context("events closed")?),
            _ = done.wait_for(|d| *d) => break,
        }
    }
    for event in drain(&mut events) {
        note(event);
    }
    Ok(seen)
}

/// `ptt track` walks a patrol's lead past three compounds: each compound's
/// guards join the patrol group as the lead comes near and leave as it
/// moves on, in order; their clients hear of it (and have the group while
/// near); the track's report lists the regroupings in order; and a lead
/// whose fix jitters across a boundary does not make the guards flap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrol_walked_with_ptt_track_regroups_each_compound_in_turn() -> anyhow::Result<()> {
    let relay = Relay::start(&patrol_directory_toml()).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("trunk-road-1.csv");
    let mut csv = String::from("# the lead of Trunk Road 1, eastbound\nseconds,lat,lon\n");
    for (t, east) in patrol_track() {
        let (lat, lon) = on_road(east);
        let _ = writeln!(csv, "{t},{lat:.8},{lon:.8}");
    }
    std::fs::write(&file, csv)?;
    let lead = relay.client(LEAD).await?;
    let mut guards = Vec::new();
    for (_, _, _, ids) in COMPOUNDS {
        for &id in ids {
            let guard = relay.client(id).await?;
            assert!(!guard.joined().contains(&PATROL));
            guards.push(guard);
        }
    }
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let watchers: Vec<_> = guards
        .iter()
        .map(|g| tokio::spawn(watch_guard(g.clone(), g.events(), done_rx.clone())))
        .collect();
    let args = TrackArgs {
        conn: relay.conn(LEAD),
        file,
        // 115 s of track in under six seconds, a report every half second
        // of track (10 m at 20 m/s).
        speed: 20.0,
        interval: Duration::from_millis(25),
        repeat: false,
        seconds: None,
        verbose: true,
    };
    let mut printed = Vec::new();
    let walking = async {
        let report = track::run(&lead, &args, std::future::pending(), |l| {
            printed.push(l.to_owned());
        })
        .await;
        let _ = done_tx.send(true);
        report
    };
    let report = tokio::time::timeout(Duration::from_secs(30), walking)
        .await
        .context("the walk did not finish")??;
    let mut seen = Vec::new();
    for watcher in watchers {
        seen.push(tokio::time::timeout(PATIENCE, watcher).await???);
    }
    assert_eq!(report.reports_failed, 0);
    assert!(report.reports_sent > 100, "{report:?}");

    // The lead (a member of the patrol group) was told every change, in order
    // (the group's details go only to the terminal added).
    let expected = [
        ('+', 301, "Compound A"),
        ('+', 302, "Compound A"),
        ('-', 301, "Compound A"),
        ('-', 302, "Compound A"),
        ('+', 311, "Compound B"),
        ('-', 311, "Compound B"),
        ('+', 321, "Compound C"),
        ('-', 321, "Compound C"),
    ];
    let lines: Vec<String> = expected
        .iter()
        .map(|&(sign, id, zone)| {
            if sign == '+' {
                format!("+ terminal {id} joined group {PATROL} (zone {zone}, ZoneEntered)")
            } else {
                format!("- terminal {id} left group {PATROL} (zone {zone}, ZoneLeft)")
            }
        })
        .collect();
    assert_eq!(report.regroupings, lines, "in order, once each");

    // Each guard was told its own join and leave, and had the group while near.
    for (guard, seen) in guards.iter().zip(seen) {
        let id = guard.terminal_id();
        let zone = expected
            .iter()
            .find(|e| e.1 == id)
            .map(|e| e.2.to_owned())
            .context("guard")?;
        assert_eq!(
            seen,
            [('+', zone.clone(), true), ('-', zone, false)],
            "guard {id}"
        );
        assert!(!guard.joined().contains(&PATROL), "guard {id}");
    }

    // The jitter did cross the approach boundary both ways after C's guard
    // joined: only the hysteresis kept it from flapping.
    let boundary = 1000.0 - approach_along_road();
    let jitter: Vec<f64> = printed
        .iter()
        .filter_map(|line| {
            let (t, position) = line.trim().split_once(" s  ")?;
            let t: f64 = t.trim().parse().ok()?;
            let lon: f64 = position.split_once(", ")?.1.parse().ok()?;
            (74.0..=94.0).contains(&t).then(|| east_of(lon))
        })
        .collect();
    let crossings = jitter
        .windows(2)
        .filter(|w| (w[0] < boundary) != (w[1] < boundary))
        .count();
    assert!(
        crossings >= 3,
        "the lead did not jitter across {boundary:.1} m: {jitter:?}"
    );
    let leave_along_road = ((50.0 + APPROACH_M + HYSTERESIS_M).powi(2) - 100.0_f64.powi(2)).sqrt();
    assert!(
        jitter.iter().all(|&e| 1000.0 - e < leave_along_road),
        "the lead went beyond the leave distance: {jitter:?}"
    );
    Ok(())
}
