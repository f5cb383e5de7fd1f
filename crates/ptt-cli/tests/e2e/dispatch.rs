//! The dispatch messages against a real relay on loopback: a roll call
//! delivered by the clients themselves and answered with `ptt respond`,
//! status messages that arrive with their code's label, and `ptt track`
//! replaying a GPS track the control room sees move. Private calls are in
//! `dispatch_calls.rs` and `dispatch_call_losses.rs`, the relay patrol in
//! `dispatch_patrol.rs`.

use crate::common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use common::{PATIENCE, Relay, expect, terminal_toml};
use ptt_cli::cli::monitor;
use ptt_cli::cli::respond::{self, RespondArgs};
use ptt_cli::cli::status::{self, StatusArgs};
use ptt_cli::cli::track::{self, TrackArgs};
use ptt_client::{Client, ClientConfig, Event, Trust};
use ptt_proto::pb;

const DISPATCHER: u32 = 1;
const CONTROL_ROOM: u32 = 1;
const DISTRICT: u32 = 10;
/// Guards in the district; 102 stays offline.
const GUARDS: [u32; 3] = [100, 101, 102];

/// A control room with one dispatcher, a district with three guards, and
/// three status codes.
fn directory_toml() -> String {
    let mut out = terminal_toml(DISPATCHER, "Console", "dispatcher", "dispatcher");
    for id in GUARDS {
        out.push_str(&terminal_toml(
            id,
            &format!("Guard {id}"),
            "guard",
            "normal",
        ));
    }
    let _ = write!(
        out,
        "[[group]]\nid = {CONTROL_ROOM}\nname = \"Control Room\"\nkind = \"control-room\"\n\n\
         [[group.members]]\nterminal = {DISPATCHER}\n\n\
         [[group]]\nid = {DISTRICT}\nname = \"District\"\nkind = \"district\"\nall-call = true\n\n"
    );
    for id in std::iter::once(DISPATCHER).chain(GUARDS) {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    for (code, label) in [(1, "On scene"), (2, "En route"), (3, "Need backup")] {
        let _ = write!(out, "[[status]]\ncode = {code}\nlabel = \"{label}\"\n\n");
    }
    out
}

fn respond_args(relay: &Relay, id: u32, alert: u64, status: Option<u32>) -> RespondArgs {
    RespondArgs {
        conn: relay.conn(id),
        alert,
        status,
        unable: false,
    }
}

/// Guards the roll call's "delivered" column: a guard whose user does
/// nothing (100) is counted as reached because its client answers by
/// itself; one whose client has the receipt turned off (101) is not,
/// though the alert reached it. `ptt respond` then moves 100 to
/// "responding" with its status code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_call_is_delivered_by_the_client_and_answered_with_ptt_respond() -> anyhow::Result<()>
{
    let relay = Relay::start(&directory_toml()).await?;
    let guard = relay.client(100).await?;
    let mut quiet = ClientConfig::new(
        relay.addr,
        Trust::Pinned(relay.cert.clone()),
        101,
        common::secret(101),
    );
    quiet.auto_ack_alerts = false;
    let quiet = Client::connect(quiet).await?;
    let mut quiet_events = quiet.events();
    let dispatcher = relay.client(DISPATCHER).await?;
    let mut tallies = dispatcher.events();

    let first = dispatcher
        .send_alert("Report status".into(), vec![DISTRICT], true)
        .await?;
    let alert_id = first.alert_id;
    assert_eq!(first.targets, 3, "{first:?}");
    let delivered = expect(&mut tallies, |e| match e {
        Event::AlertTally(t) if t.alert_id == alert_id && t.delivered > 0 => Some(t.clone()),
        _ => None,
    })
    .await?;
    assert_eq!((delivered.delivered, delivered.responding), (1, 0));
    let entry = delivered.entries.first().context("no entry")?;
    assert_eq!(entry.terminal_id, 100);
    assert_eq!(entry.kind, i32::from(pb::AlertAckKind::Delivered));

    // 101 has the alert but sends no receipt.
    let got = expect(&mut quiet_events, |e| match e {
        Event::Alert(a) => Some(a.alert_id),
        _ => None,
    })
    .await?;
    assert_eq!(got, alert_id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Some(event) = tallies.try_recv() {
        if let Event::AlertTally(t) = event {
            bail!("no further answer expected, got {t:?}");
        }
    }

    let line = respond::run(&guard, &respond_args(&relay, 100, alert_id, Some(1))).await?;
    assert_eq!(
        line,
        format!("answered alert {alert_id}: Responding with status 1 On scene")
    );
    let responding = expect(&mut tallies, |e| match e {
        Event::AlertTally(t) if t.alert_id == alert_id => Some(t.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(
        (
            responding.delivered,
            responding.responding,
            responding.unable
        ),
        (1, 1, 0)
    );
    assert_eq!(responding.entries[0].status_code, Some(1));

    let unknown_code = respond::run(&guard, &respond_args(&relay, 100, alert_id, Some(42)))
        .await
        .expect_err("code not in the table");
    assert!(
        unknown_code
            .to_string()
            .contains("not in the relay's table"),
        "{unknown_code}"
    );
    let no_alert = respond::run(&guard, &respond_args(&relay, 100, 7, None))
        .await
        .expect_err("no such alert");
    assert_eq!(no_alert.to_string(), "no alert 7 (or it has expired)");
    let not_mine = respond::run(
        &dispatcher,
        &respond_args(&relay, DISPATCHER, alert_id, None),
    )
    .await
    .expect_err("the sender is no recipient");
    assert!(
        not_mine.to_string().contains("not addressed to terminal 1"),
        "{not_mine}"
    );
    Ok(())
}

fn status_args(relay: &Relay, id: u32) -> StatusArgs {
    StatusArgs {
        conn: relay.conn(id),
        list: false,
        code: None,
        text: None,
        to: None,
        group: None,
        dispatchers: false,
    }
}

/// A status code reaches the control room and a terminal, and is shown by
/// its label from the relay's table (the code alone means nothing to a
/// dispatcher); `--list` prints that table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_messages_round_trip_with_their_label() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let guard = relay.client(100).await?;
    let peer = relay.client(101).await?;
    let mut peer_events = peer.events();
    assert_eq!(peer.status_label(3).as_deref(), Some("Need backup"));
    assert_eq!(peer.status_codes().len(), 3);

    let mut printed = Vec::new();
    let list = StatusArgs {
        list: true,
        ..status_args(&relay, 100)
    };
    status::run(&guard, &list, |l| printed.push(l.to_owned())).await?;
    assert_eq!(
        printed,
        ["   1  On scene", "   2  En route", "   3  Need backup"]
    );

    let dispatcher = relay.client(DISPATCHER).await?;
    let frames = Arc::new(Mutex::new(Vec::<String>::new()));
    let drawn = frames.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watching = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        let result = monitor::run(&dispatcher, Some(30.0), stop, move |view| {
            let text = view.render(std::time::Instant::now());
            drawn.lock().expect("lock").push(text);
        })
        .await;
        dispatcher.close().await;
        result
    });
    // The monitor is up once it has drawn.
    tokio::time::timeout(PATIENCE, async {
        while frames.lock().expect("lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;

    let to_control_room = StatusArgs {
        code: Some(3),
        text: Some("gate 2".into()),
        dispatchers: true,
        ..status_args(&relay, 100)
    };
    let mut printed = Vec::new();
    status::run(&guard, &to_control_room, |l| printed.push(l.to_owned())).await?;
    assert_eq!(
        printed,
        ["sent status 3 Need backup \"gate 2\" to dispatchers"]
    );

    let to_peer = StatusArgs {
        code: Some(1),
        to: Some(101),
        ..status_args(&relay, 100)
    };
    status::run(&guard, &to_peer, |_| {}).await?;
    let got = expect(&mut peer_events, |e| match e {
        Event::Status(s) => Some(s.clone()),
        _ => None,
    })
    .await?;
    assert_eq!((got.from_terminal_id, got.code), (100, 1));
    assert_eq!(peer.status_label(got.code).as_deref(), Some("On scene"));

    // The monitor shows it, label and text, at its next redraw.
    common::until_drawn(&frames, |view| {
        view.contains("status from 100 to dispatchers: 3 Need backup \"gate 2\"")
    })
    .await?;
    let _ = stop_tx.send(());
    watching.await??;
    Ok(())
}

/// `ptt track` sends positions interpolated between the track's points at
/// the replay speed, ending on the last point; the control room sees each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_replays_interpolated_positions_to_the_control_room() -> anyhow::Result<()> {
    let relay = Relay::start(&directory_toml()).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("route.csv");
    std::fs::write(
        &file,
        "# north 111 m, then east 190 m\nseconds,lat,lon\n0,31.2,121.4\n10,31.201,121.4\n20,31.201,121.402\n",
    )?;
    let dispatcher = relay.client(DISPATCHER).await?;
    let mut seen = dispatcher.events();
    let lead = relay.client(100).await?;
    let args = TrackArgs {
        conn: relay.conn(100),
        file: file.clone(),
        speed: 20.0,
        interval: Duration::from_millis(100),
        repeat: false,
        seconds: Some(20.0),
        verbose: false,
    };
    let started = std::time::Instant::now();
    let report = track::run(&lead, &args, std::future::pending(), |_| {}).await?;
    let took = started.elapsed();
    // 20 s of track at 20x: one second, 11 or 12 reports with the end
    // point (fewer if the machine is busy: ticks are delayed, not bunched).
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!((6..=14).contains(&report.reports_sent), "{report:?}");
    assert_eq!(report.last, Some((31.201, 121.402)));

    let mut positions = Vec::new();
    while positions.len() < usize::try_from(report.reports_sent)? {
        let l = expect(&mut seen, |e| match e {
            Event::Location(l) => Some(*l),
            _ => None,
        })
        .await?;
        assert_eq!(l.terminal_id, 100);
        positions.push(l);
    }
    let first = &positions[0];
    assert_eq!((first.latitude_deg, first.longitude_deg), (31.2, 121.4));
    let last = positions.last().context("none")?;
    assert_eq!((last.latitude_deg, last.longitude_deg), (31.201, 121.402));
    assert!(
        positions
            .windows(2)
            .all(|w| w[1].latitude_deg >= w[0].latitude_deg
                && w[1].longitude_deg >= w[0].longitude_deg),
        "moves back: {positions:?}"
    );
    let between = |p: &&pb::LocationReport| {
        (p.latitude_deg > 31.2 && p.latitude_deg < 31.201)
            || (p.longitude_deg > 121.4 && p.longitude_deg < 121.402)
    };
    assert!(
        positions.iter().filter(between).count() >= 3,
        "not interpolated: {positions:?}"
    );
    assert!(
        positions
            .iter()
            .all(|p| p.speed_mps.is_some_and(|s| s > 10.0))
    );

    std::fs::write(&file, "0,31.2,121.4\n10,31.3\n")?;
    let error = track::run(&lead, &args, std::future::pending(), |_| {})
        .await
        .expect_err("bad track");
    let message = format!("{error:#}");
    assert!(
        message.contains("route.csv") && message.contains("line 2: expected 3 fields"),
        "{message}"
    );
    Ok(())
}
