//! A session the relay ends for good is final for the client library (proto/voice.md §1):
//! a terminal an administrator disabled (close code 2 after `GoingAway` AUTH_REVOKED) and a
//! session replaced by a newer login of the same terminal (close code 4) do not reconnect;
//! the last event and every later request say why. The clients reconnect fast here, so a
//! client that did try would reach the relay many times in the quiet window watched.

use std::time::Duration;

use ptt_client::{ClientConfig, ClientError, Event, Events, Trust};
use ptt_proto::pb;
use ptt_relay_core::metrics::Metrics;
use ptt_tests::directory::secret;
use ptt_tests::{Client, PATIENCE, TestDirectory, TestRelay};
use reqwest::StatusCode;

/// The admin token of the relay.
const TOKEN: &str = "test-admin-token-0123456789";
/// How long the relay is watched for a reconnect attempt: ten times the
/// clients' longest backoff.
const QUIET: Duration = Duration::from_secs(3);

/// Guards 100 and 101 in group 10.
fn directory() -> TestDirectory {
    TestDirectory::new().guards(100..102).group(10, [100, 101])
}

async fn start() -> anyhow::Result<TestRelay> {
    TestRelay::start_with(&directory(), |config| {
        config.admin_token = Some(TOKEN.parse().expect("token"));
    })
    .await
}

/// A client library terminal that would retry within 50 ms and then every
/// 100–300 ms.
async fn terminal(relay: &TestRelay, id: u32) -> anyhow::Result<ptt_client::Client> {
    let mut config = ClientConfig::new(
        relay.addr,
        Trust::Pinned(relay.cert.clone()),
        id,
        secret(id),
    );
    config.reconnect.first_attempt_spread = Duration::from_millis(50);
    config.reconnect.initial_delay = Duration::from_millis(100);
    config.reconnect.max_delay = Duration::from_millis(300);
    Ok(ptt_client::Client::connect(config).await?)
}

/// Every login the relay has seen, whatever became of it.
fn logins(metrics: &Metrics) -> u64 {
    metrics.sessions_opened.get()
        + metrics.auth_failures.get()
        + metrics.auth_rate_limited.get()
        + metrics.auth_resume_stale.get()
        + metrics.auth_resume_invalid.get()
}

/// The reason of the client's `Disconnected` that gives up; fails on one that
/// reconnects or on a reconnect.
async fn gave_up(events: &mut Events) -> anyhow::Result<String> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(Event::Disconnected {
                    reason,
                    will_reconnect: false,
                }) => return Ok(reason),
                Some(event @ (Event::Disconnected { .. } | Event::Reconnected { .. })) => {
                    anyhow::bail!("the client went on: {event:?}")
                }
                Some(_) => {}
                None => anyhow::bail!("the events ended without a reason"),
            }
        }
    })
    .await?
}

/// Nothing happens for [`QUIET`]: no login reaches the relay, the client stays
/// down, and its event stream is over.
async fn stays_down(
    relay: &TestRelay,
    client: &ptt_client::Client,
    events: &mut Events,
    logins_before: u64,
) -> anyhow::Result<()> {
    let after = tokio::time::timeout(QUIET, events.recv()).await;
    assert!(matches!(after, Ok(None)), "events went on: {after:?}");
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        logins(&relay.metrics),
        logins_before,
        "a login reached the relay"
    );
    assert!(!client.is_connected());
    assert_eq!(client.stats().reconnects, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_client_says_so_and_never_reconnects() -> anyhow::Result<()> {
    let relay = start().await?;
    let client = terminal(&relay, 100).await?;
    let other = terminal(&relay, 101).await?;
    let mut events = client.events();
    let logins_before = logins(&relay.metrics);

    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/admin/terminals/100/disable",
            relay.ops
        ))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);

    let reason = gave_up(&mut events).await?;
    assert_eq!(reason, "terminal disabled by an administrator");
    assert_eq!(events.ended(), Some(ClientError::Disabled));
    assert_eq!(client.ping().await, Err(ClientError::Disabled));
    assert_eq!(client.join(10).await.err(), Some(ClientError::Disabled));
    stays_down(&relay, &client, &mut events, logins_before).await?;
    // The terminal beside it was not touched.
    assert!(other.is_connected());
    other.ping().await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_client_says_by_whom_and_leaves_the_newer_session_alone() -> anyhow::Result<()> {
    let relay = start().await?;
    let client = terminal(&relay, 100).await?;
    let mut events = client.events();

    // Another device logs in as terminal 100.
    let newer = Client::connect(relay.addr, &relay.cert, 100).await?;
    let logins_before = logins(&relay.metrics);

    let reason = gave_up(&mut events).await?;
    assert_eq!(reason, "replaced by a newer session of terminal 100");
    assert_eq!(
        events.ended(),
        Some(ClientError::Replaced { terminal: 100 })
    );
    assert_eq!(
        client.ping().await,
        Err(ClientError::Replaced { terminal: 100 })
    );
    stays_down(&relay, &client, &mut events, logins_before).await?;
    // The newer session was never thrown out in turn.
    assert!(
        newer.conn.close_reason().is_none(),
        "{:?}",
        newer.conn.close_reason()
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_session_is_told_before_it_is_closed_with_code_4() -> anyhow::Result<()> {
    let relay = start().await?;
    let mut older = Client::connect(relay.addr, &relay.cert, 100).await?;
    let newer = Client::connect(relay.addr, &relay.cert, 100).await?;
    let (going_away, code) = older.going_away_and_close().await?;
    assert_eq!(
        pb::GoingAwayReason::try_from(going_away.reason),
        Ok(pb::GoingAwayReason::SessionReplaced),
        "{going_away:?}"
    );
    assert_eq!(
        code, 4,
        "proto/voice.md §1: 4 = replaced by a newer session"
    );
    assert!(newer.conn.close_reason().is_none());
    relay.stop().await?;
    Ok(())
}
