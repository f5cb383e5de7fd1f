//! Admin actions across a cluster: a terminal disabled through one relay's
//! admin API is cut off on the relay it is on and refused on every other,
//! within a second; enabled again on one, it logs in anywhere; a relay that
//! was down meanwhile applies what it missed when it is back; an emergency
//! is cleared through any relay's admin API by the relay that decides it.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::directory::secret;
use ptt_tests::nats::NatsServer;

use crate::in_process;
use ptt_tests::{Client, TestDirectory, TestRelay};

const TOKEN: &str = "cluster-admin-token-0123456789";
const RELAYS: [&str; 3] = ["relay-a", "relay-b", "relay-c"];
const GUARD: u32 = 5;
/// How soon every relay must refuse a terminal disabled on one.
const EVERYWHERE_WITHIN: Duration = Duration::from_secs(1);

async fn relay(
    nats: &NatsServer,
    directory: &TestDirectory,
    id: &str,
) -> anyhow::Result<TestRelay> {
    in_process::relay(nats, directory, id, |config| {
        config.admin_token = Some(TOKEN.parse().expect("token"));
    })
    .await
}

/// POSTs an admin action to `relay`'s ops port.
async fn act(relay: &TestRelay, action: &str) -> anyhow::Result<()> {
    let url = format!(
        "http://{}/api/v1/admin/terminals/{GUARD}/{action}",
        relay.ops
    );
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "duty officer Li"}))
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "{action}: {}",
        response.status()
    );
    Ok(())
}

/// Whether the guard's login on `relay` is refused as disabled (`Some(true)`),
/// accepted (`Some(false)`, logged out again), or refused otherwise (`None`).
async fn refused_as_disabled(relay: &TestRelay) -> anyhow::Result<Option<bool>> {
    match Client::login(relay.addr, &relay.cert, GUARD, secret(GUARD).as_bytes()).await? {
        Ok(client) => {
            client.close().await;
            Ok(Some(false))
        }
        Err(error) if error.reason == i32::from(pb::ErrorReason::TerminalDisabled) => {
            Ok(Some(true))
        }
        Err(_) => Ok(None),
    }
}

/// Polls until `relay` answers the guard's login with `disabled`.
async fn until_login(
    relay: &TestRelay,
    disabled: bool,
    within: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if refused_as_disabled(relay).await? == Some(disabled) {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < within,
            "the guard's login on {} still not {} after {within:?}",
            relay.addr,
            if disabled { "refused" } else { "accepted" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_disabled_on_one_relay_is_refused_on_all_within_a_second() -> anyhow::Result<()>
{
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=6).group(11, 1..=6);
    let a = relay(&nats, &directory, RELAYS[0]).await?;
    let b = relay(&nats, &directory, RELAYS[1]).await?;
    let c = relay(&nats, &directory, RELAYS[2]).await?;
    let mut on_b = Client::connect(b.addr, &b.cert, GUARD).await?;

    let started = Instant::now();
    act(&a, "disable").await?;
    let going = on_b
        .expect_body(|body| match body {
            Body::GoingAway(g) => Some(g.reason),
            _ => None,
        })
        .await?;
    let cut_off = started.elapsed();
    ensure!(
        going == i32::from(pb::GoingAwayReason::AuthRevoked),
        "B told the guard {going}"
    );
    until_login(&c, true, EVERYWHERE_WITHIN).await?;
    let everywhere = started.elapsed();
    eprintln!("disabled on A: cut off on B after {cut_off:?}, refused on C after {everywhere:?}");
    ensure!(
        everywhere < EVERYWHERE_WITHIN,
        "refused everywhere only after {everywhere:?}"
    );

    // C is down while the guard is enabled on B: back, it applies it.
    let data_c = c.stop().await?;
    act(&b, "enable").await?;
    until_login(&a, false, EVERYWHERE_WITHIN).await?;
    let c = in_process::relay(&nats, &directory, RELAYS[2], |config| {
        config.data_dir = data_c.path().to_owned();
        config.directory = Some(data_c.path().join("directory.toml"));
        config.admin_token = Some(TOKEN.parse().expect("token"));
    })
    .await?;
    until_login(&c, false, Duration::from_secs(5))
        .await
        .context("the relay that was down did not apply the enable it missed")?;
    for relay in [a, b, c] {
        relay.stop().await?;
    }
    Ok(())
}

/// An administrator clears, through relay B's admin API, the emergency of a
/// group relay A decides: A's arbiter clears it (B's own floor knows of no
/// emergency) and the declaring guard on A is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_decided_on_one_relay_is_cleared_through_another() -> anyhow::Result<()> {
    use ptt_proto::pb::client_message::Body as Request;

    const GROUP: u32 = 11;
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=6).group(GROUP, 1..=6);
    let a = relay(&nats, &directory, RELAYS[0]).await?;
    let b = relay(&nats, &directory, RELAYS[1]).await?;
    let mut guard = Client::connect(a.addr, &a.cert, GUARD).await?;
    // B has a member, so it follows the group's floor.
    let _on_b = Client::connect(b.addr, &b.cert, 6).await?;
    let state = guard
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: GROUP,
            text: "intruder at the north fence".to_owned(),
        }))
        .await?;
    ensure!(
        matches!(state, Body::EmergencyState(ref s) if s.active),
        "{state:?}"
    );
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/admin/groups/{GROUP}/emergency/clear",
            b.ops
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "duty officer Li"}))
        .send()
        .await?;
    ensure!(response.status().is_success(), "{}", response.status());
    let cleared: serde_json::Value = response.json().await?;
    ensure!(cleared["cleared"] == true, "B answered {cleared}");
    guard
        .expect_body(|body| match body {
            Body::EmergencyState(s) if s.group_id == GROUP && !s.active => Some(()),
            _ => None,
        })
        .await
        .context("the guard on A was not told the emergency ended")?;
    ensure!(
        a.groups
            .get(GROUP)
            .context("group 11")?
            .emergency_declarer()
            .is_none(),
        "A's arbiter still in emergency"
    );
    drop((guard, _on_b));
    for relay in [a, b] {
        relay.stop().await?;
    }
    Ok(())
}
