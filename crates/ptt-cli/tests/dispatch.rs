//! The dispatch commands against a real relay on loopback: a roll call
//! delivered by the clients themselves and answered with `ptt respond`,
//! status messages that arrive with their code's label, `ptt track`
//! replaying a GPS track the control room sees move, private calls with
//! `ptt call` and `ptt answer` (refusals, a peer lost mid-call, an emergency
//! call pre-empting another), and a relay patrol walked with `ptt track`
//! past three compounds whose guards join and leave in order.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use common::{Relay, Wire, terminal_toml};
use ptt_cli::cli::answer::{self, AnswerArgs};
use ptt_cli::cli::call::{self, CallArgs};
use ptt_cli::cli::monitor;
use ptt_cli::cli::respond::{self, RespondArgs};
use ptt_cli::cli::status::{self, StatusArgs};
use ptt_cli::cli::track::{self, TrackArgs};
use ptt_client::{Client, ClientConfig, Event, Events, FloorOutcome, ReconnectPolicy, Trust};
use ptt_proto::pb;
use ptt_relay::private_call::PRIVATE_CALL_GROUP_BASE;

/// How long a test waits for what should happen at once on loopback.
const PATIENCE: Duration = Duration::from_secs(10);

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

/// The first event `pick` accepts, within [`PATIENCE`].
async fn expect<T>(
    events: &mut Events,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(&event) {
                        return Ok(found);
                    }
                }
                None => bail!("event stream closed"),
            }
        }
    })
    .await
    .context("expected event did not arrive")?
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
        let result = monitor::run(&dispatcher, Some(30.0), stop, move |text| {
            drawn.lock().expect("lock").push(text.to_owned());
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

    tokio::time::sleep(Duration::from_millis(700)).await;
    let _ = stop_tx.send(());
    watching.await??;
    let last = frames
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .context("nothing drawn")?;
    assert!(
        last.contains("status from 100 to dispatchers: 3 Need backup \"gate 2\""),
        "{last}"
    );
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

// ---------------------------------------------------------------------------
// Private calls
// ---------------------------------------------------------------------------

const CALLER: u32 = 100;
const CALLEE: u32 = 101;
/// A third guard: calls the callee first (busy) or pre-empts its call.
const THIRD: u32 = 102;
/// A guard that never answers.
const SLEEPER: u32 = 103;
/// In the directory, never logged in.
const OFFLINE: u32 = 104;
const SQUAD: u32 = 20;

/// Guards 100–104 sharing squad 20 (so each may call the others).
fn call_directory_toml() -> String {
    let guards = [CALLER, CALLEE, THIRD, SLEEPER, OFFLINE];
    let mut out = String::new();
    for id in guards {
        out.push_str(&terminal_toml(
            id,
            &format!("Guard {id}"),
            "guard",
            "normal",
        ));
    }
    let _ = write!(
        out,
        "[[group]]\nid = {SQUAD}\nname = \"Squad\"\nkind = \"other\"\n\n"
    );
    for id in guards {
        let _ = write!(out, "[[group.members]]\nterminal = {id}\n\n");
    }
    out
}

fn call_args(relay: &Relay, from: u32, to: u32, tone: f32) -> CallArgs {
    CallArgs {
        conn: relay.conn(from),
        callee: to,
        tone: Some(tone),
        wav: None,
        emergency: false,
        answer_timeout: PATIENCE.as_secs_f64(),
    }
}

fn answer_args(relay: &Relay, id: u32, reject: bool) -> AnswerArgs {
    AnswerArgs {
        conn: relay.conn(id),
        seconds: Some(PATIENCE.as_secs_f64()),
        wav: None,
        reject,
    }
}

/// Every event already received.
fn drain(events: &mut Events) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv()).collect()
}

/// Whether `client` still knows `group` in any way (joined, listed, or as
/// the group of call `call_id`).
fn knows(client: &Client, group: u32, call_id: u64) -> bool {
    client.joined().contains(&group)
        || client.groups().iter().any(|g| g.group_id == group)
        || client.call_group(call_id).is_some()
}

/// The relay's unsolicited join of this terminal to `group`, among `events`.
fn joined_by_relay(events: &[Event], group: u32) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Joined(ok)
            if ok.group.as_ref().is_some_and(|g| g.group_id == group && g.dynamic))
    })
}

/// `ptt call` and `ptt answer` run side by side: both parties are joined to
/// the call's group, the callee hears the caller's tone, the caller hangs
/// up, the callee's report says so, and both forget the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptt_call_is_answered_heard_and_hung_up() -> anyhow::Result<()> {
    let relay = Relay::start(&call_directory_toml()).await?;
    let caller = relay.client(CALLER).await?;
    let callee = relay.client(CALLEE).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();
    let (mut caller_lines, mut callee_lines) = (Vec::new(), Vec::new());
    // `join!` polls in order: `ptt answer` is waiting before the call is set up.
    let (answering, calling) = (
        answer_args(&relay, CALLEE, false),
        call_args(&relay, CALLER, CALLEE, 1.0),
    );
    let (answered, called) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            answer::run(&callee, &answering, std::future::pending(), |l| {
                callee_lines.push(l.to_owned())
            },),
            call::run(&caller, &calling, std::future::pending(), |l| caller_lines
                .push(l.to_owned()),),
        )
    })
    .await
    .context("call did not finish")?;
    let report = called?;
    let heard = answered?;
    let (id, group) = (report.call_id, report.group);
    assert!(group >= PRIVATE_CALL_GROUP_BASE, "{report:?}");
    assert_eq!(
        (
            heard.call.call_id,
            heard.call.caller_terminal_id,
            heard.call.group_id
        ),
        (id, CALLER, group)
    );
    assert!(!heard.rejected);
    assert_eq!(heard.ended, Some(pb::PrivateCallEndReason::Hangup));
    assert_eq!(report.ended_by_peer, None, "the caller hung up");
    assert!(report.talk.access_time.is_some(), "{:?}", report.talk);
    // Every frame of the tone, plus an end-of-burst frame if the last one
    // went out unmarked.
    let encoded = report.talk.frames_encoded as u64;
    assert!(
        (encoded..=encoded + 1).contains(&report.talk.frames_sent) && encoded >= 45,
        "one second of tone: {:?}",
        report.talk
    );
    let received: u64 = heard.heard.bursts.iter().map(|b| b.frames_received).sum();
    assert!(received > 0, "the callee heard nothing: {:?}", heard.heard);
    assert!(
        heard.heard.bursts.iter().all(|b| b.talker == CALLER),
        "{:?}",
        heard.heard.bursts
    );
    assert!(!heard.heard.pcm.is_empty());
    assert_eq!(
        caller_lines,
        [
            format!("calling {CALLEE}: call {id}, group {group}"),
            format!("{CALLEE} answered; talking in group {group}"),
            "hung up".to_owned(),
        ]
    );
    assert_eq!(
        callee_lines.last().map(String::as_str),
        Some(format!("call {id}: the caller ended it (Hangup)").as_str()),
        "{callee_lines:?}"
    );

    let (caller_seen, callee_seen) = (drain(&mut caller_events), drain(&mut callee_events));
    assert!(joined_by_relay(&caller_seen, group), "caller not joined");
    assert!(joined_by_relay(&callee_seen, group), "callee not joined");
    assert!(caller_seen.iter().any(
        |e| matches!(e, Event::CallAccepted { call_id, group: g } if *call_id == id && *g == group)
    ));
    assert!(callee_seen.iter().any(|e| matches!(e,
        Event::CallEnded { call_id, reason: pb::PrivateCallEndReason::Hangup } if *call_id == id)));
    for (who, client) in [("caller", &caller), ("callee", &callee)] {
        assert!(
            !knows(client, group, id),
            "the {who} still knows the call group: {:?}",
            client.joined()
        );
        assert!(client.joined().contains(&SQUAD), "{who}");
    }
    Ok(())
}

/// Every way a call does not happen ends `ptt call` with an error that
/// says why: declined by `ptt answer --reject`, callee offline, no such
/// terminal, callee busy in another call, nobody answering in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptt_call_says_why_a_call_did_not_happen() -> anyhow::Result<()> {
    let relay = Relay::start(&call_directory_toml()).await?;
    let caller = relay.client(CALLER).await?;
    let callee = relay.client(CALLEE).await?;
    let (answering, calling) = (
        answer_args(&relay, CALLEE, true),
        call_args(&relay, CALLER, CALLEE, 1.0),
    );
    let (answered, called) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            answer::run(&callee, &answering, std::future::pending(), |_| {}),
            call::run(&caller, &calling, std::future::pending(), |_| {}),
        )
    })
    .await?;
    let declined = called.expect_err("declined");
    assert_eq!(
        format!("{declined:#}"),
        format!("{CALLEE} rejected the call: Declined")
    );
    let answered = answered?;
    assert!(
        answered.rejected && answered.ended.is_none(),
        "{answered:?}"
    );
    assert_eq!(answered.call.caller_terminal_id, CALLER);
    assert!(!knows(
        &caller,
        answered.call.group_id,
        answered.call.call_id
    ));
    assert!(!knows(
        &callee,
        answered.call.group_id,
        answered.call.call_id
    ));

    let attempt = |to: u32| {
        let args = call_args(&relay, CALLER, to, 0.2);
        let caller = caller.clone();
        async move {
            tokio::time::timeout(
                PATIENCE,
                call::run(&caller, &args, std::future::pending(), |_| {}),
            )
            .await
            .context("ptt call hangs")?
            .map(|report| format!("connected: {report:?}"))
        }
    };
    let offline = attempt(OFFLINE).await.expect_err("offline");
    assert_eq!(
        format!("{offline:#}"),
        format!("{OFFLINE} rejected the call: Offline")
    );
    let unknown = attempt(999).await.expect_err("no such terminal");
    let unknown = format!("{unknown:#}");
    assert!(
        unknown.contains("UnknownTerminal") && unknown.contains("no such terminal"),
        "{unknown}"
    );

    // The callee is in a call with a third guard: busy for anyone else.
    let third = relay.client(THIRD).await?;
    let mut third_events = third.events();
    let mut callee_events = callee.events();
    let setup = third.call(CALLEE, false).await?;
    let incoming = expect(&mut callee_events, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    assert_eq!(incoming, setup.call_id);
    callee.accept_call(incoming).await?;
    expect(&mut third_events, |e| {
        matches!(e, Event::CallAccepted { call_id, .. } if *call_id == setup.call_id).then_some(())
    })
    .await?;
    let busy = attempt(CALLEE).await.expect_err("busy");
    assert_eq!(
        format!("{busy:#}"),
        format!("{CALLEE} rejected the call: Busy")
    );
    // ...and the call in progress is untouched.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for event in drain(&mut third_events)
        .into_iter()
        .chain(drain(&mut callee_events))
    {
        assert!(
            !matches!(event, Event::CallEnded { .. }),
            "busy attempt ended the call: {event:?}"
        );
    }
    assert_eq!(callee.call_group(setup.call_id), Some(setup.group_id));
    assert_eq!(third.call_group(setup.call_id), Some(setup.group_id));

    // Nobody answers: `ptt call` gives up after --answer-timeout and hangs
    // up, so the callee stops ringing.
    let sleeper = relay.client(SLEEPER).await?;
    let mut ringing = sleeper.events();
    let args = CallArgs {
        answer_timeout: 0.3,
        ..call_args(&relay, CALLER, SLEEPER, 0.2)
    };
    let started = Instant::now();
    let unanswered = call::run(&caller, &args, std::future::pending(), |_| {})
        .await
        .expect_err("nobody answered");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        format!("{unanswered:#}"),
        format!("no answer from {SLEEPER} within 300ms; hung up")
    );
    let rang = expect(&mut ringing, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    let ended = expect(&mut ringing, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == rang => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(ended, pb::PrivateCallEndReason::Hangup);
    assert_eq!(sleeper.call_group(rang), None);
    Ok(())
}

/// Client settings that notice a lost relay within about a second and
/// come back quickly, connecting through `wire`.
fn through(relay: &Relay, wire: &Wire, id: u32) -> ClientConfig {
    let mut config = relay.config(id);
    config.server = wire.addr;
    config.connect_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(1);
    config.keep_alive = Duration::from_millis(250);
    config.reconnect = ReconnectPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(300),
        ..ReconnectPolicy::default()
    };
    config
}

/// Cuts `wire` until the client has noticed, then mends it and returns the
/// groups joined after the reconnect.
async fn drop_and_reconnect(wire: &Wire, events: &mut Events) -> anyhow::Result<Vec<u32>> {
    wire.cut();
    reconnect_after_cut(wire, events).await
}

/// With `wire` cut: waits until the client has noticed, then mends it and
/// returns the groups joined after the reconnect.
async fn reconnect_after_cut(wire: &Wire, events: &mut Events) -> anyhow::Result<Vec<u32>> {
    let will_reconnect = expect(events, |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(*will_reconnect),
        _ => None,
    })
    .await?;
    ensure!(will_reconnect, "the client gave up");
    wire.mend();
    expect(events, |e| match e {
        Event::Reconnected { groups, .. } => Some(groups.clone()),
        _ => None,
    })
    .await
}

/// The callee's connection drops mid-call: the caller's client is told
/// PEER_DISCONNECTED (and `ptt call` stops talking and reports it); after
/// reconnecting, neither party is in the call's group again, for the client
/// nor for the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_lost_mid_call_ends_it_and_nobody_rejoins_its_group() -> anyhow::Result<()> {
    let relay = Relay::start_with(&call_directory_toml(), |config| {
        config.idle_timeout = Duration::from_secs(1);
        config.keep_alive = Duration::from_millis(250);
    })
    .await?;
    let (caller_wire, callee_wire) = (Wire::to(relay.addr).await?, Wire::to(relay.addr).await?);
    let caller = Client::connect(through(&relay, &caller_wire, CALLER)).await?;
    let callee = Client::connect(through(&relay, &callee_wire, CALLEE)).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();
    let mut lines = Vec::new();
    // Ten seconds of tone: the call is cut long before it ends.
    let args = call_args(&relay, CALLER, CALLEE, 10.0);
    let callee_side = async {
        let call = expect(&mut callee_events, |e| match e {
            Event::CallIncoming(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        callee.accept_call(call.call_id).await?;
        expect(&mut callee_events, |e| match e {
            Event::Voice(f) if f.group == call.group_id => Some(()),
            _ => None,
        })
        .await
        .context("the callee heard nothing before the cut")?;
        callee_wire.cut();
        anyhow::Ok((call, Instant::now()))
    };
    let calling = call::run(&caller, &args, std::future::pending(), |l| {
        lines.push(l.to_owned());
    });
    let (cut, called) =
        tokio::time::timeout(PATIENCE, async { tokio::join!(callee_side, calling) })
            .await
            .context("the call did not end")?;
    let (call, cut_at) = cut?;
    let report = called?;
    let noticed = cut_at.elapsed();
    assert_eq!(report.call_id, call.call_id);
    assert_eq!(
        report.ended_by_peer,
        Some(pb::PrivateCallEndReason::PeerDisconnected)
    );
    assert!(
        report.talk.frames_sent < 400,
        "talked on: {:?}",
        report.talk
    );
    assert!(noticed < Duration::from_secs(5), "{noticed:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(format!("{CALLEE} ended the call: PeerDisconnected").as_str())
    );
    let told = expect(&mut caller_events, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == call.call_id => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(told, pb::PrivateCallEndReason::PeerDisconnected);
    let group = call.group_id;
    assert!(
        !knows(&caller, group, call.call_id),
        "{:?}",
        caller.joined()
    );

    // The callee noticed too; back online, it is not in the call any more.
    let rejoined = reconnect_after_cut(&callee_wire, &mut callee_events).await?;
    assert!(rejoined.contains(&SQUAD), "{rejoined:?}");
    assert!(!rejoined.contains(&group), "{rejoined:?}");
    assert!(
        !knows(&callee, group, call.call_id),
        "{:?}",
        callee.joined()
    );
    // The caller through a reconnect of its own: the same.
    let rejoined = drop_and_reconnect(&caller_wire, &mut caller_events).await?;
    assert!(
        rejoined.contains(&SQUAD) && !rejoined.contains(&group),
        "{rejoined:?}"
    );
    assert!(!knows(&caller, group, call.call_id));
    // Nor does the relay count either as a party: no floor in that group.
    for client in [&caller, &callee] {
        let outcome = client
            .request_floor(group, pb::Priority::Normal, pb::FloorKind::Normal)
            .await;
        assert!(
            !matches!(outcome, Ok(FloorOutcome::Granted { .. })),
            "{} got the floor of the ended call's group: {outcome:?}",
            client.terminal_id()
        );
    }
    Ok(())
}

/// The callee loses the relay but comes back before the relay noticed (a
/// handover): its new login replaces the old session, which ends the call
/// for the caller (PEER_DISCONNECTED) at once rather than at the relay's
/// idle timeout; the new session is not in the call's group, and a new call
/// between the two works end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_back_before_the_relay_noticed_ends_the_call_once() -> anyhow::Result<()> {
    // The relay's idle timeout stays at its default (10 s): it never notices
    // the old connection is dead before the new login.
    let relay = Relay::start(&call_directory_toml()).await?;
    let callee_wire = Wire::to(relay.addr).await?;
    let caller = relay.client(CALLER).await?;
    let callee = Client::connect(through(&relay, &callee_wire, CALLEE)).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();
    let setup = caller.call(CALLEE, false).await?;
    let incoming = expect(&mut callee_events, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    callee.accept_call(incoming).await?;
    for events in [&mut caller_events, &mut callee_events] {
        expect(events, |e| {
            matches!(e, Event::Joined(ok)
                if ok.group.as_ref().is_some_and(|g| g.group_id == setup.group_id))
            .then_some(())
        })
        .await?;
    }

    callee_wire.cut_down();
    let lost = Instant::now();
    let rejoined = reconnect_after_cut(&callee_wire, &mut callee_events).await?;
    assert!(!rejoined.contains(&setup.group_id), "{rejoined:?}");
    let ended = expect(&mut caller_events, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == setup.call_id => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(ended, pb::PrivateCallEndReason::PeerDisconnected);
    let took = lost.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "ended by the relay's idle timeout, not the new login: {took:?}"
    );
    assert!(!knows(&caller, setup.group_id, setup.call_id));
    assert!(!knows(&callee, setup.group_id, setup.call_id));

    let (answering, calling) = (
        answer_args(&relay, CALLEE, false),
        call_args(&relay, CALLER, CALLEE, 0.5),
    );
    let (answered, called) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            answer::run(&callee, &answering, std::future::pending(), |_| {}),
            call::run(&caller, &calling, std::future::pending(), |_| {}),
        )
    })
    .await
    .context("the second call did not finish")?;
    let (report, heard) = (called?, answered?);
    let received: u64 = heard.heard.bursts.iter().map(|b| b.frames_received).sum();
    assert!(received > 0, "{report:?} / {:?}", heard.heard.bursts);
    assert_eq!(heard.ended, Some(pb::PrivateCallEndReason::Hangup));
    Ok(())
}

/// An emergency private call to a terminal in another call ends that call
/// for both its parties (PREEMPTED) and rings; the pre-empted caller hears
/// nothing of the emergency call, though it may reuse the same group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_call_preempts_the_callees_other_call() -> anyhow::Result<()> {
    let relay = Relay::start(&call_directory_toml()).await?;
    let caller = relay.client(CALLER).await?;
    let callee = relay.client(CALLEE).await?;
    let third = relay.client(THIRD).await?;
    let mut caller_events = caller.events();
    let mut callee_events = callee.events();

    let old = caller.call(CALLEE, false).await?;
    let incoming = expect(&mut callee_events, |e| match e {
        Event::CallIncoming(c) => Some(c.call_id),
        _ => None,
    })
    .await?;
    callee.accept_call(incoming).await?;
    for events in [&mut caller_events, &mut callee_events] {
        expect(events, |e| {
            matches!(e, Event::Joined(ok)
                if ok.group.as_ref().is_some_and(|g| g.group_id == old.group_id))
            .then_some(())
        })
        .await?;
    }
    assert!(caller.joined().contains(&old.group_id));

    let args = CallArgs {
        emergency: true,
        ..call_args(&relay, THIRD, CALLEE, 0.6)
    };
    let callee_side = async {
        let preempted = expect(&mut callee_events, |e| match e {
            Event::CallEnded { call_id, reason } if *call_id == old.call_id => Some(*reason),
            _ => None,
        })
        .await?;
        let call = expect(&mut callee_events, |e| match e {
            Event::CallIncoming(c) => Some(c.clone()),
            _ => None,
        })
        .await?;
        ensure!(
            call.emergency && call.caller_terminal_id == THIRD,
            "{call:?}"
        );
        ensure!(
            callee.call_group(old.call_id).is_none(),
            "the old call is remembered"
        );
        callee.accept_call(call.call_id).await?;
        // Hear the emergency caller until it hangs up.
        let mut frames = 0;
        loop {
            match callee_events.recv().await {
                Some(Event::Voice(f)) if f.group == call.group_id && f.talker == THIRD => {
                    frames += 1;
                }
                Some(Event::CallEnded { call_id, .. }) if call_id == call.call_id => break,
                Some(_) => {}
                None => bail!("callee's events closed"),
            }
        }
        anyhow::Ok((preempted, call, frames))
    };
    let calling = call::run(&third, &args, std::future::pending(), |_| {});
    let (answered, called) =
        tokio::time::timeout(PATIENCE, async { tokio::join!(callee_side, calling) })
            .await
            .context("the emergency call did not finish")?;
    let (preempted, call, frames) = answered?;
    let report = called?;
    assert_eq!(preempted, pb::PrivateCallEndReason::Preempted);
    assert_eq!(report.call_id, call.call_id);
    assert!(report.talk.frames_sent > 0 && frames > 0, "heard {frames}");

    let old_end = expect(&mut caller_events, |e| match e {
        Event::CallEnded { call_id, reason } if *call_id == old.call_id => Some(*reason),
        _ => None,
    })
    .await?;
    assert_eq!(old_end, pb::PrivateCallEndReason::Preempted);
    assert_eq!(caller.call_group(old.call_id), None);
    let overheard = drain(&mut caller_events)
        .into_iter()
        .filter(|e| matches!(e, Event::Voice(_)))
        .count();
    assert_eq!(
        overheard, 0,
        "the pre-empted caller heard the emergency call"
    );
    for client in [&caller, &callee, &third] {
        assert!(
            !knows(client, old.group_id, old.call_id)
                && !knows(client, call.group_id, call.call_id),
            "{} still in a call group: {:?}",
            client.terminal_id(),
            client.joined()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Relay patrol
// ---------------------------------------------------------------------------

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
