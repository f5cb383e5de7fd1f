//! Per-session limits of what a terminal reports (proto/voice.md §2.7), through the real
//! relay: status messages and position reports beyond their limits are refused with
//! `RATE_LIMITED`, the control room receives at most their budget (the positions' own,
//! smaller forwarding budget included), a terminal that keeps on is cut off with
//! application close code 1, and a terminal reporting at a normal pace beside them is never
//! refused and loses nothing. `rate_limits.rs` covers floor requests and joins; this file
//! covers the report families.
//!
//! The relay runs with small limits set through its configuration (`rate-status`,
//! `rate-location`, `rate-location-forwarded`), so a flood crosses them after a few dozen
//! requests whatever the machine's speed, and the settings are shown to reach the sessions.

use std::time::{Duration, Instant};

use anyhow::Context;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_relay_core::metrics::limits::RequestFamily;
use ptt_relay_core::session::Rate;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay};

/// Status messages: 2 a second, 10 at once.
const STATUS: Rate = Rate::new(2.0, 10.0);
/// Position reports: 10 a second, 20 at once.
const LOCATION: Rate = Rate::new(10.0, 20.0);
/// Positions sent on to the control room: 5 a second, 10 at once.
const FORWARDED: Rate = Rate::new(5.0, 10.0);
/// Refusals tolerated before the cut-off: the default, 50 at once (voice.md §2.7).
const TOLERATED_AT_ONCE: u64 = 50;
/// The application close code of a terminal cut off for its rate (voice.md §1).
const CLOSE_PROTOCOL: u32 = 1;

/// Dispatcher 1 in control room 1; guards 100–102 in group 10.
fn directory() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(1)
        .guards(100..103)
        .group_with(1, "control-room", [1], &[])
        .group(10, [100, 101, 102])
}

async fn start() -> anyhow::Result<TestRelay> {
    TestRelay::start_with(&directory(), |config| {
        config.rate_status = STATUS;
        config.rate_location = LOCATION;
        config.rate_location_forwarded = FORWARDED;
    })
    .await
}

/// The most a bucket of `rate` lets through in `window` (the burst, the refill, and one
/// for a refill landing on the edge).
fn budget(rate: Rate, window: Duration) -> usize {
    (rate.burst + rate.per_second * window.as_secs_f64()).floor() as usize + 1
}

fn status(text: &str) -> Request {
    Request::StatusMessage(pb::StatusMessage {
        code: 0,
        text: text.to_owned(),
        target: Some(pb::status_message::Target::Dispatchers(true)),
        ..Default::default()
    })
}

fn position(n: u32) -> Request {
    Request::LocationReport(pb::LocationReport {
        latitude_deg: 52.0 + f64::from(n) * 1e-5,
        longitude_deg: 4.0,
        ..Default::default()
    })
}

/// Answers to a flood: acknowledged and refused (with the refusals' details).
#[derive(Debug, Default)]
struct Answers {
    acked: usize,
    refused: Vec<String>,
}

impl Answers {
    fn take(&mut self, body: &Body) {
        match body {
            Body::Ack(_) => self.acked += 1,
            Body::Error(e) if e.reason == i32::from(pb::ErrorReason::RateLimited) => {
                self.refused.push(e.detail.clone());
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

/// Sends `requests` back to back without waiting, then collects their answers; returns
/// them with the time from the first send to the last answer (the window in which the
/// relay took them).
async fn flood(
    client: &mut Client,
    requests: impl IntoIterator<Item = Request>,
) -> anyhow::Result<(Answers, Duration)> {
    let begin = Instant::now();
    let mut ids = Vec::new();
    for request in requests {
        ids.push(client.send(request).await?);
    }
    let mut answers = Answers::default();
    for id in ids {
        let answer = client.expect(|m| m.request_id == id).await?;
        answers.take(&answer.body.context("answer without body")?);
    }
    Ok((answers, begin.elapsed()))
}

/// What the control room received from each terminal.
#[derive(Debug, Default)]
struct Received {
    statuses: Vec<(u32, String)>,
    positions: Vec<u32>,
}

impl Received {
    fn statuses_from(&self, terminal: u32) -> usize {
        self.statuses.iter().filter(|(t, _)| *t == terminal).count()
    }

    fn positions_from(&self, terminal: u32) -> usize {
        self.positions.iter().filter(|t| **t == terminal).count()
    }
}

/// Everything that reaches `dispatcher` until it stays quiet for half a second (or
/// [`PATIENCE`] has passed: bounded either way).
async fn receive(dispatcher: &mut Client) -> anyhow::Result<Received> {
    let mut received = Received::default();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let Some(message) = dispatcher
            .expect_within(Duration::from_millis(500), |_| true)
            .await?
        else {
            break;
        };
        match message.body {
            Some(Body::StatusMessage(s)) => received.statuses.push((s.from_terminal_id, s.text)),
            Some(Body::LocationReport(r)) => received.positions.push(r.terminal_id),
            _ => {}
        }
    }
    Ok(received)
}

/// A terminal's joins finish after `HelloOk`: waits until the dispatcher hears the
/// reports of `probe` (which spends one status of its budget), then forgets them.
async fn until_heard(dispatcher: &mut Client, probe: &mut Client) -> anyhow::Result<()> {
    for _ in 0..20 {
        let answer = probe.request(status("are you there?")).await?;
        anyhow::ensure!(matches!(answer, Body::Ack(_)), "{answer:?}");
        let heard = dispatcher
            .expect_within(Duration::from_millis(250), |m| {
                matches!(&m.body, Some(Body::StatusMessage(s)) if s.from_terminal_id == probe.terminal)
            })
            .await?;
        if heard.is_some() {
            dispatcher.clear();
            // The probe's bucket refills before it is used again.
            tokio::time::sleep(Duration::from_secs_f64(1.0 / STATUS.per_second)).await;
            return Ok(());
        }
    }
    anyhow::bail!("the dispatcher never heard the control room")
}

/// A terminal used normally: a status and a position every 300 ms for `rounds` rounds,
/// each answer awaited; returns the answers.
async fn report_normally(mut client: Client, rounds: u32) -> anyhow::Result<(Client, Answers)> {
    let mut answers = Answers::default();
    for round in 0..rounds {
        answers.take(&client.request(status(&format!("round {round}"))).await?);
        answers.take(&client.request(position(round)).await?);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok((client, answers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_floods_are_refused_and_the_control_room_gets_at_most_the_budget()
-> anyhow::Result<()> {
    let relay = start().await?;
    let mut clients = relay.connect_all([1, 100, 101, 102]).await;
    let mut normal = clients.pop().expect("102");
    let mut locator = clients.pop().expect("101");
    let mut chatter = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");
    until_heard(&mut dispatcher, &mut normal).await?;

    // Terminal 102 reports at a normal pace while the others flood.
    let rounds = 6;
    let normal = tokio::spawn(report_normally(normal, rounds));
    // Twice the status burst at once, four times the forwarding burst of positions:
    // beyond each limit, yet fewer refusals than tolerated.
    let sent_statuses = 2 * STATUS.burst as usize;
    let (statuses, status_window) = flood(
        &mut chatter,
        (0..sent_statuses).map(|n| status(&format!("flood {n}"))),
    )
    .await?;
    let sent_positions = 2 * LOCATION.burst as u32;
    let (positions, position_window) =
        flood(&mut locator, (0..sent_positions).map(position)).await?;
    let (normal, normal_answers) = normal.await??;
    let received = receive(&mut dispatcher).await?;

    // Statuses: refused beyond the limit, naming the family; every one taken reached
    // the control room, and no more than the budget.
    assert_eq!(statuses.acked + statuses.refused.len(), sent_statuses);
    assert!(!statuses.refused.is_empty(), "{statuses:?}");
    assert!(statuses.refused[0].contains("status"), "{statuses:?}");
    assert!(
        statuses.acked <= budget(STATUS, status_window),
        "{} statuses taken in {status_window:?}",
        statuses.acked
    );
    assert_eq!(received.statuses_from(100), statuses.acked);

    // Positions: refused beyond their limit; of those taken, the control room was sent
    // the forwarding budget: all of its burst, never more than its rate allows.
    assert_eq!(
        positions.acked + positions.refused.len(),
        sent_positions as usize
    );
    assert!(!positions.refused.is_empty(), "{positions:?}");
    assert!(positions.refused[0].contains("location"), "{positions:?}");
    assert!(positions.acked <= budget(LOCATION, position_window));
    let forwarded = received.positions_from(101);
    assert!(
        forwarded >= FORWARDED.burst as usize
            && forwarded <= budget(FORWARDED, position_window)
            && forwarded < positions.acked,
        "{forwarded} of {} positions forwarded in {position_window:?}",
        positions.acked
    );

    // The terminal reporting normally was never refused and lost nothing.
    assert!(normal_answers.refused.is_empty(), "{normal_answers:?}");
    assert_eq!(normal_answers.acked, 2 * rounds as usize);
    assert_eq!(received.statuses_from(102), rounds as usize);
    assert_eq!(received.positions_from(102), rounds as usize);

    // Nobody was cut off: the floods stayed within the tolerated refusals.
    assert_eq!(relay.metrics.rate.cut_off(), 0);
    for (client, name) in [(&mut chatter, "100"), (&mut locator, "101")] {
        let pong = client.request(Request::Ping(pb::Ping::default())).await?;
        assert!(matches!(pong, Body::Pong(_)), "{name}: {pong:?}");
    }
    assert_eq!(
        relay.metrics.rate.refused(RequestFamily::Status),
        statuses.refused.len() as u64
    );
    assert_eq!(
        relay.metrics.rate.refused(RequestFamily::Location),
        positions.refused.len() as u64
    );
    eprintln!(
        "report floods: {} of {sent_statuses} statuses taken in {:.0} ms (all delivered); {} \
         of {sent_positions} positions taken in {:.0} ms, {forwarded} sent to the control room",
        statuses.acked,
        status_window.as_secs_f64() * 1000.0,
        positions.acked,
        position_window.as_secs_f64() * 1000.0,
    );
    drop(normal);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_report_flood_is_cut_off_while_a_normal_terminal_goes_on() -> anyhow::Result<()>
{
    let relay = start().await?;
    let mut clients = relay.connect_all([1, 100, 102]).await;
    let mut normal = clients.pop().expect("102");
    let mut abuser = clients.pop().expect("100");
    let mut dispatcher = clients.pop().expect("1");
    until_heard(&mut dispatcher, &mut normal).await?;

    let normal = tokio::spawn(report_normally(normal, 8));
    // A status and a position every 10 ms (100 a second each, far beyond both limits),
    // answers unread, for at most 1,000 ticks or until the relay closes the connection.
    let begin = Instant::now();
    let mut ticks = 0u32;
    while ticks < 1000 && abuser.conn.close_reason().is_none() && begin.elapsed() < PATIENCE {
        ticks += 1;
        let sent = abuser.send(status(&format!("abuse {ticks}"))).await;
        if sent.is_err() || abuser.send(position(ticks)).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let close = tokio::time::timeout(PATIENCE, abuser.conn.closed()).await?;
    let abused_for = begin.elapsed();
    match &close {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, quinn::VarInt::from_u32(CLOSE_PROTOCOL));
        }
        other => anyhow::bail!("abuser not cut off: {other:?}"),
    }
    let (normal, normal_answers) = normal.await??;
    let received = receive(&mut dispatcher).await?;

    // Cut off once it had gone past the tolerated refusals, counted by family.
    let refused = relay.metrics.rate.refused(RequestFamily::Status)
        + relay.metrics.rate.refused(RequestFamily::Location);
    assert!(
        refused > TOLERATED_AT_ONCE,
        "cut off after {refused} refusals"
    );
    assert_eq!(relay.metrics.rate.cut_off(), 1);
    // The control room heard no more of it than its budgets allow.
    let (statuses, forwarded) = (received.statuses_from(100), received.positions_from(100));
    assert!(
        statuses <= budget(STATUS, abused_for),
        "{statuses} statuses"
    );
    assert!(
        forwarded <= budget(FORWARDED, abused_for),
        "{forwarded} positions"
    );
    // The terminal beside it went on untouched.
    assert!(normal_answers.refused.is_empty(), "{normal_answers:?}");
    assert_eq!(normal_answers.acked, 16);
    assert_eq!(
        (received.statuses_from(102), received.positions_from(102)),
        (8, 8)
    );
    assert!(normal.conn.close_reason().is_none());
    eprintln!(
        "sustained report flood: {ticks} ticks, cut off after {refused} refusals in {:.0} ms; \
         the control room got {statuses} statuses and {forwarded} positions of it",
        abused_for.as_secs_f64() * 1000.0
    );
    relay.stop().await?;
    Ok(())
}
