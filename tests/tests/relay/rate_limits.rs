//! Per-session request limits through the real relay (proto/voice.md §2.7):
//! a terminal looping floor requests is refused, then cut off, without
//! filling the call log or the consoles and while its group talks on; a
//! join/leave loop reaches the control room as a few coalesced updates; a
//! terminal used normally is never limited.

use std::path::Path;
use std::time::{Duration, Instant};

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_relay_core::metrics::limits::RequestFamily;
use ptt_tests::bystander::{self, Bystanders};
use ptt_tests::client::granted;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay, opus};

/// Frames the bystanders' talker sends per measured burst: 3 s at 50/s.
const BYSTANDER_FRAMES: u16 = 150;

/// Dispatcher 1 in control room 1 and group 10 with guards 100–102; guard
/// 100 may also use group 11; the bystanders in a group of their own.
fn directory() -> TestDirectory {
    bystander::in_directory(
        TestDirectory::new()
            .dispatcher(1)
            .guards(100..103)
            .group_with(1, "control-room", [1], &[])
            .group(10, [1, 100, 101, 102])
            .group(11, [100]),
    )
}

/// The bystanders' quiet figures and a measurement of them already under
/// way (frames flowing), to run an attack in. The `dispatcher` (who sees
/// every terminal come online) is drained of their presence first.
async fn bystanders_measuring(
    relay: &TestRelay,
    dispatcher: &mut Client,
) -> anyhow::Result<(bystander::Figures, bystander::Measuring)> {
    let mut bystanders = Bystanders::start_on(relay).await?;
    let quiet = bystanders.measure(BYSTANDER_FRAMES).await?;
    drain(dispatcher, Duration::from_millis(200)).await?;
    let mut measuring = bystanders.spawn_measure(BYSTANDER_FRAMES);
    measuring.started().await?;
    Ok((quiet, measuring))
}

/// Every control message that reaches `client` until it stays quiet for
/// `quiet`.
async fn drain(client: &mut Client, quiet: Duration) -> anyhow::Result<Vec<pb::ServerMessage>> {
    let mut out = Vec::new();
    while let Some(message) = client.expect_within(quiet, |_| true).await? {
        out.push(message);
    }
    Ok(out)
}

/// The `RATE_LIMITED` error in `body`, if it is one.
fn rate_limited(body: &Body) -> Option<&pb::Error> {
    match body {
        Body::Error(e) if e.reason == i32::from(pb::ErrorReason::RateLimited) => Some(e),
        _ => None,
    }
}

/// Recording files under `dir` whose name says talker `talker`.
fn recordings_of(dir: &Path, talker: u32) -> usize {
    let suffix = format!("-t{talker}");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                recordings_of(&path, talker)
            } else {
                usize::from(path.to_string_lossy().contains(&suffix))
            }
        })
        .sum()
}

/// What the flooding terminal saw.
struct Flood {
    requests: u32,
    grants: u32,
    refusals: Vec<pb::Error>,
    took: Duration,
    close: Option<quinn::ConnectionError>,
}

/// Requests and releases the floor of group 10 up to `loops` times, each
/// answer awaited (as the probe of the issue did), ignoring refusals, until
/// the relay closes the connection. `started` fires after the fifth grant.
async fn flood_floor(
    mut client: Client,
    loops: u32,
    started: tokio::sync::oneshot::Sender<()>,
) -> Flood {
    let mut flood = Flood {
        requests: 0,
        grants: 0,
        refusals: Vec::new(),
        took: Duration::ZERO,
        close: None,
    };
    let mut started = Some(started);
    let begin = Instant::now();
    for _ in 0..loops {
        flood.requests += 1;
        let Ok(answer) = client.press(10).await else {
            break;
        };
        if granted(&answer).is_some() {
            flood.grants += 1;
            if flood.grants == 5
                && let Some(started) = started.take()
            {
                let _ = started.send(());
            }
        }
        if let Some(error) = rate_limited(&answer) {
            flood.refusals.push(error.clone());
        }
        if client.release(10).await.is_err() {
            break;
        }
    }
    flood.took = begin.elapsed();
    flood.close = tokio::time::timeout(PATIENCE, client.conn.closed())
        .await
        .ok();
    flood
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_floor_flood_is_refused_and_cut_off_while_the_group_talks_on() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut clients = relay.connect_all([1, 100, 101, 102]).await;
    let listener = clients.pop().expect("102");
    let mut talker = clients.pop().expect("101");
    let flooder = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");
    drain(&mut dispatcher, Duration::from_millis(200)).await?;
    let (quiet, measuring) = bystanders_measuring(&relay, &mut dispatcher).await?;

    let (started_tx, started) = tokio::sync::oneshot::channel();
    let flood = tokio::spawn(flood_floor(flooder, 1000, started_tx));
    started.await?;

    // Terminal 101 talks a second while the flood goes on: granted at once
    // or right after the flooder's release.
    let answer = talker.press(10).await?;
    let burst = match granted(&answer) {
        Some(burst) => burst,
        None => {
            assert!(matches!(answer, Body::FloorQueued(_)), "{answer:?}");
            talker.expect_body(granted).await?
        }
    };
    let hear = tokio::spawn(async move {
        let mut heard = Vec::new();
        while heard.len() < 50 {
            match listener.recv_voice(PATIENCE).await {
                Some(frame) if frame.header.talker_id == 101 => heard.push(frame.header.sequence),
                Some(_) => {}
                None => break,
            }
        }
        heard
    });
    for seq in 0..50u16 {
        talker.send_datagram(opus::datagram(10, burst, seq, u64::from(seq) * 20_000))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(talker.release(10).await?, Body::Ack(_)));
    let heard = hear.await?;
    assert_eq!(
        heard,
        (0..50).collect::<Vec<u16>>(),
        "every frame, in order"
    );

    // The flooder was refused with RATE_LIMITED naming the family, then cut
    // off with the protocol's close code.
    let flood = flood.await?;
    // Kept online until the dispatcher is drained: their going offline is
    // not the flood's.
    let (_bystanders, attacked) = measuring.finish().await?;
    eprintln!("bystanders quiet:             {quiet}");
    eprintln!(
        "bystanders under floor flood: {attacked} (the flood lasted {:?})",
        flood.took
    );
    attacked.holds_against(&quiet).map_err(anyhow::Error::msg)?;
    let first = flood.refusals.first().expect("refused");
    assert!(first.detail.contains("floor"), "{}", first.detail);
    match &flood.close {
        Some(quinn::ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(close.error_code, quinn::VarInt::from_u32(1), "{close:?}");
        }
        other => anyhow::bail!("flooder not cut off: {other:?}"),
    }
    assert!(
        flood.requests < 200,
        "cut off after {} of 1000 loops",
        flood.requests
    );

    // The dispatcher, a member of the group, saw a bounded number of
    // messages (floor taken and idle of the grants, the presence).
    let seen = drain(&mut dispatcher, Duration::from_millis(500)).await?;
    assert!(seen.len() <= 2 * 30 + 10, "{} messages", seen.len());

    let metrics = relay.metrics.clone();
    let data = relay.stop().await?;
    assert!(metrics.rate.refused(RequestFamily::Floor) >= flood.refusals.len() as u64);
    assert_eq!(metrics.rate.cut_off(), 1);
    assert!(metrics.cut_off.get() >= 1);
    assert!(metrics.empty_bursts.get() >= u64::from(flood.grants));

    // The flooder's history is bounded by its grants before the cut-off
    // (each an empty burst, no recording); 101's burst is there with its
    // frames.
    let db = rusqlite::Connection::open(data.path().join("pttd.sqlite"))?;
    let (empty, of_flooder, talked): (i64, i64, i64) = db.query_row(
        "SELECT (SELECT COUNT(*) FROM bursts WHERE frames = 0),
                (SELECT COUNT(*) FROM bursts WHERE talker = 100),
                (SELECT COALESCE(SUM(frames), 0) FROM bursts WHERE talker = 101)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let grants = i64::from(flood.grants);
    assert_eq!((empty, of_flooder, talked), (grants, grants, 50));
    assert!(grants <= 30, "{grants} grants before the cut-off");
    assert_eq!(recordings_of(&data.path().join("recordings"), 100), 0);
    assert_eq!(recordings_of(&data.path().join("recordings"), 101), 1);

    let secs = flood.took.as_secs_f64();
    eprintln!(
        "floor flood: cut off after {} loops in {:.0} ms, {} grants (as many burst rows), {} \
         refusals; the dispatcher got {} messages",
        flood.requests,
        secs * 1000.0,
        flood.grants,
        flood.refusals.len(),
        seen.len(),
    );
    Ok(())
}

/// The `Presence` events about terminal 100 in group 10 among `messages`.
fn presences_in_10(messages: &[pb::ServerMessage]) -> Vec<i32> {
    messages
        .iter()
        .filter_map(|m| match &m.body {
            Some(Body::Presence(p)) if p.terminal_id == 100 && p.group_id == 10 => Some(p.state),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_leave_loop_reaches_the_control_room_coalesced() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut clients = relay.connect_all([1, 100]).await;
    let mut looper = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");
    drain(&mut dispatcher, Duration::from_millis(200)).await?;
    let leave = || Request::LeaveGroup(pb::LeaveGroup { group_id: 10 });
    let join = || Request::JoinGroup(pb::JoinGroup { group_id: 10 });

    // A quiet window after the log-in's presence, then as fast as it can,
    // within the burst: 25 leaves and joins.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let begin = Instant::now();
    for _ in 0..25 {
        looper.send(leave()).await?;
        looper.send(join()).await?;
    }
    let seen = presences_in_10(&drain(&mut dispatcher, Duration::from_millis(600)).await?);
    let fast = (begin.elapsed(), seen.len());
    assert!((1..=3).contains(&seen.len()), "50 changes became {seen:?}");
    assert_eq!(seen.last(), Some(&i32::from(pb::PresenceState::Joined)));

    // Sustained, within the rate limit: 16 changes a second for 3 s.
    let begin = Instant::now();
    let mut sent = 0;
    for i in 0..48 {
        let request = if i % 2 == 0 { leave() } else { join() };
        let answer = looper.request(request).await?;
        assert!(rate_limited(&answer).is_none(), "{answer:?}");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    looper.request(leave()).await?;
    let seen = presences_in_10(&drain(&mut dispatcher, Duration::from_millis(600)).await?);
    let secs = begin.elapsed().as_secs_f64();
    let per_second = seen.len() as f64 / secs;
    assert!(per_second < 10.0, "{} updates in {secs:.1} s", seen.len());
    assert_eq!(
        seen.last(),
        Some(&i32::from(pb::PresenceState::Left)),
        "the latest state wins"
    );
    eprintln!(
        "join/leave: 50 changes in {:.0} ms told {} time(s); {} changes in {secs:.1} s told {} \
         times ({per_second:.1}/s)",
        fast.0.as_millis(),
        fast.1,
        sent + 1,
        seen.len(),
    );
    assert_eq!(relay.metrics.rate.refused(RequestFamily::Membership), 0);

    // The loop of the issue: a thousand leaves and joins, each answer
    // awaited, as fast as they come. Refused beyond the burst, then cut off;
    // the control room hears a handful of updates and the terminal going
    // offline; the bystanders talk on meanwhile.
    let (quiet, measuring) = bystanders_measuring(&relay, &mut dispatcher).await?;
    let begin = Instant::now();
    let mut loops = 0;
    for _ in 0..1000 {
        loops += 1;
        if looper.request(join()).await.is_err() || looper.request(leave()).await.is_err() {
            break;
        }
    }
    let took = begin.elapsed();
    tokio::time::timeout(PATIENCE, looper.conn.closed()).await?;
    let (_bystanders, attacked) = measuring.finish().await?;
    eprintln!("bystanders quiet:                  {quiet}");
    eprintln!("bystanders under join/leave flood: {attacked} (the flood lasted {took:?})");
    attacked.holds_against(&quiet).map_err(anyhow::Error::msg)?;
    let told = drain(&mut dispatcher, Duration::from_millis(600)).await?;
    assert!(loops < 200, "cut off after {loops} loops");
    assert!(told.len() <= 8, "{told:?}");
    assert_eq!(relay.metrics.rate.cut_off(), 1);
    eprintln!(
        "join/leave flood: cut off after {loops} loops in {} ms; the dispatcher got {} messages",
        took.as_millis(),
        told.len()
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_use_is_never_limited() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut clients = relay.connect_all([1, 100, 101]).await;
    let listener = clients.pop().expect("101");
    let mut terminal = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");
    drain(&mut dispatcher, Duration::from_millis(200)).await?;

    let mut answers = Vec::new();
    for round in 0..4u16 {
        // A talk burst of 10 frames, heard whole.
        let burst = granted(&terminal.press(10).await?).expect("granted");
        for seq in 0..10 {
            terminal.send_datagram(opus::datagram(10, burst, seq, 0))?;
        }
        for _ in 0..10 {
            assert!(listener.recv_voice(PATIENCE).await.is_some(), "heard");
        }
        answers.push(terminal.release(10).await?);
        // A position, a ping, a quality report, a channel change.
        answers.push(
            terminal
                .request(Request::LocationReport(pb::LocationReport {
                    latitude_deg: 52.0 + f64::from(round) * 1e-4,
                    longitude_deg: 4.0,
                    ..Default::default()
                }))
                .await?,
        );
        answers.push(terminal.request(Request::Ping(pb::Ping::default())).await?);
        answers.push(
            terminal
                .request(Request::QualityReport(pb::QualityReport::default()))
                .await?,
        );
        // Joined to 11 at log-in: leave it first.
        let change = if round % 2 == 0 {
            Request::LeaveGroup(pb::LeaveGroup { group_id: 11 })
        } else {
            Request::JoinGroup(pb::JoinGroup { group_id: 11 })
        };
        answers.push(terminal.request(change).await?);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let limited: Vec<&Body> = answers
        .iter()
        .filter(|a| rate_limited(a).is_some())
        .collect();
    assert!(limited.is_empty(), "{limited:?}");
    // Every change of group 11 reached the dispatcher, none coalesced away.
    let changes: Vec<i32> = drain(&mut dispatcher, Duration::from_millis(400))
        .await?
        .iter()
        .filter_map(|m| match &m.body {
            Some(Body::Presence(p)) if p.terminal_id == 100 && p.group_id == 11 => Some(p.state),
            _ => None,
        })
        .collect();
    let (joined, left) = (
        i32::from(pb::PresenceState::Joined),
        i32::from(pb::PresenceState::Left),
    );
    assert_eq!(changes, [left, joined, left, joined]);
    for family in RequestFamily::ALL {
        assert_eq!(relay.metrics.rate.refused(family), 0, "{family}");
    }
    assert_eq!(relay.metrics.rate.cut_off(), 0);
    assert_eq!(relay.metrics.empty_bursts.get(), 0);
    relay.stop().await?;
    Ok(())
}
