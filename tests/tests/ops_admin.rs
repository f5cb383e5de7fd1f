//! The admin API of the ops port over real HTTP: the token guards it, a
//! disabled terminal is cut off at once and stays out across a restart, an
//! emergency is cleared for the group's members, and membership changes make
//! an online terminal hear a group or stop hearing it; a talker that loses
//! the right to talk loses the floor at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ptt_calllog::{ADMIN_TERMINAL, AdminAction, CallLogReader};
use ptt_directory::{GroupId, TerminalId};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::directory::secret;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "test-admin-token-0123456789";
const GROUP: u32 = 100;
const DISPATCHER: u32 = 1;
/// Guards 11 and 12 are members of [`GROUP`]; 13 is not.
const OUTSIDER: u32 = 13;

fn directory() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(DISPATCHER)
        .guards([11, 12, OUTSIDER])
        .group(GROUP, [DISPATCHER, 11, 12])
        .group(200, [11, 12, OUTSIDER])
}

async fn start(data: Option<&tempfile::TempDir>) -> anyhow::Result<TestRelay> {
    let data = data.map(|d| d.path().to_owned());
    TestRelay::start_with(&directory(), move |config| {
        config.admin_token = Some(TOKEN.parse().expect("token"));
        if let Some(data) = data {
            config.data_dir = data;
        }
    })
    .await
}

/// Sends an admin request with `token` (none: no `Authorization` header).
async fn call(
    ops: SocketAddr,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = reqwest::Client::new().request(method, format!("http://{ops}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// Sends an admin request with the token and a raw body, with or without a
/// `Content-Type`.
async fn call_raw(
    ops: SocketAddr,
    method: reqwest::Method,
    path: &str,
    body: &'static str,
    content_type: Option<&str>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{ops}{path}"))
        .bearer_auth(TOKEN)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

async fn admin(ops: SocketAddr, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
    let (status, body) = call(ops, method, path, Some(TOKEN), None).await?;
    anyhow::ensure!(status == StatusCode::OK, "{path}: {status} {body}");
    Ok(body)
}

/// Every voice frame a client hears until `quiet` passes without one.
async fn heard(client: &Client, quiet: Duration) -> usize {
    let mut frames = 0;
    while client.recv_voice(quiet).await.is_some() {
        frames += 1;
    }
    frames
}

/// `talker` takes the floor of `group`, sends `frames` frames and releases.
async fn talk(talker: &mut Client, group: u32, frames: u16) -> anyhow::Result<()> {
    let burst = granted(&talker.press(group).await?).expect("granted");
    for seq in 0..frames {
        talker.send_datagram(opus::datagram(group, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    talker.release(group).await?;
    Ok(())
}

fn regrouped(body: &Body) -> Option<(u32, i32, i32)> {
    match body {
        Body::Regrouped(r) => Some((r.group_id, r.change, r.reason)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_its_token() -> anyhow::Result<()> {
    use reqwest::Method;
    // Not configured: refused for everybody, even with a token.
    let relay = TestRelay::start(&directory()).await?;
    let path = "/api/v1/admin/terminals/11/disable";
    let (status, body) = call(relay.ops, Method::POST, path, Some(TOKEN), None).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "admin API disabled: set admin_token");
    relay.stop().await?;

    let relay = start(None).await?;
    for token in [None, Some("wrong-token-0123456789abc"), Some("")] {
        let (status, body) = call(relay.ops, Method::POST, path, token, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
    }
    let (status, _) = call(
        relay.ops,
        Method::GET,
        "/api/v1/admin/terminals/disabled",
        None,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // None of that disabled anything.
    let guard = Client::connect(relay.addr, &relay.cert, 11).await?;
    assert_eq!(
        admin(relay.ops, Method::GET, "/api/v1/admin/terminals/disabled").await?,
        json!({"disabled": []})
    );
    // With the token: unknown ids and bad bodies are refused, nothing logged.
    for (method, path, body, expected) in [
        (
            Method::POST,
            "/api/v1/admin/terminals/999/disable",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/admin/groups/999/emergency/clear",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::DELETE,
            "/api/v1/admin/groups/100/members/13",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            Some(json!({"listen": false, "talk": false})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            Some(json!({"listen": true, "shout": true})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            Some(json!({"talk": "yes"})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/eleven/disable",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            "/api/v1/admin/groups/100/members/-1",
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            Some(json!({"by": ""})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            Some(json!({"by": "x".repeat(65)})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            Some(json!({"who": "me"})),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = call(relay.ops, method, path, Some(TOKEN), body).await?;
        assert_eq!(status, expected, "{path}: {answer}");
        assert!(
            answer["error"].is_string(),
            "{path}: not a JSON error: {answer}"
        );
    }
    // Bodies without the JSON content type, or not JSON at all.
    for (method, path, body, content_type) in [
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            "{}",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/admin/groups/100/members/13",
            "{\"talk\": ",
            Some("application/json"),
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            "{\"by\": \"me\"}",
            None,
        ),
        (
            Method::POST,
            "/api/v1/admin/terminals/11/disable",
            "by=me",
            Some("application/x-www-form-urlencoded"),
        ),
    ] {
        let (status, answer) = call_raw(relay.ops, method, path, body, content_type).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(
            answer["error"].is_string(),
            "{path}: not a JSON error: {answer}"
        );
    }
    guard.close().await;
    let data = relay.stop().await?;
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    assert!(reader.admin_actions()?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_terminal_is_cut_off_at_once_and_stays_out_across_a_restart()
-> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let guard = Client::connect(relay.addr, &relay.cert, 11).await?;
    let other = Client::connect(relay.addr, &relay.cert, 12).await?;

    let started = Instant::now();
    let (status, answer) = call(
        relay.ops,
        Method::POST,
        "/api/v1/admin/terminals/11/disable",
        Some(TOKEN),
        Some(json!({"by": "duty officer Li"})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"terminal": 11, "disabled": true, "disconnected": true})
    );
    let closed = tokio::time::timeout(Duration::from_secs(1), guard.conn.closed())
        .await
        .map_err(|_| anyhow::anyhow!("a disabled terminal was still connected after 1 s"))?;
    let took = started.elapsed();
    eprintln!("disable → connection closed in {took:?} (request included)");
    match &closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(u64::from(close.error_code), 2, "{close}");
            assert_eq!(&close.reason[..], b"terminal disabled by an administrator");
        }
        other => panic!("closed otherwise: {other}"),
    }
    // The `GoingAway` before the close is best effort (it has 50 ms to
    // leave); when it arrives it says not to reconnect.
    let mut guard = guard;
    let going_away = guard
        .expect_within(Duration::from_millis(100), |m| {
            matches!(&m.body, Some(Body::GoingAway(_)))
        })
        .await;
    if let Ok(Some(message)) = going_away {
        assert!(
            matches!(&message.body, Some(Body::GoingAway(g)) if g.reason == i32::from(pb::GoingAwayReason::AuthRevoked)),
            "{message:?}"
        );
    }
    // The others are untouched.
    assert!(other.conn.close_reason().is_none());

    // Its right secret no longer logs in; the refusal is logged.
    let refused = Client::login(relay.addr, &relay.cert, 11, secret(11).as_bytes())
        .await?
        .err()
        .expect("a disabled terminal logged in");
    assert_eq!(refused.reason, i32::from(pb::ErrorReason::AuthFailed));
    assert!(refused.detail.contains("disabled"), "{}", refused.detail);
    // Retrying is refused before its secret is checked (a wrong one gets the
    // same answer), counted each time, but logged once a minute.
    let failures_before = relay.metrics.auth_failures.get();
    for _ in 0..3 {
        let refused = Client::login(relay.addr, &relay.cert, 11, b"not the secret")
            .await?
            .err()
            .expect("a disabled terminal logged in");
        assert_eq!(refused.reason, i32::from(pb::ErrorReason::AuthFailed));
        assert!(refused.detail.contains("disabled"), "{}", refused.detail);
    }
    assert_eq!(relay.metrics.auth_failures.get(), failures_before + 3);

    // Disabled across a restart on the same data directory.
    let data = relay.stop().await?;
    let relay = start(Some(&data)).await?;
    assert!(
        Client::login(relay.addr, &relay.cert, 11, secret(11).as_bytes())
            .await?
            .is_err(),
        "the disable did not survive the restart"
    );
    assert_eq!(
        admin(relay.ops, Method::GET, "/api/v1/admin/terminals/disabled").await?,
        json!({"disabled": [11]})
    );
    // Enabled: it logs in again.
    admin(relay.ops, Method::POST, "/api/v1/admin/terminals/11/enable").await?;
    let back = Client::connect(relay.addr, &relay.cert, 11).await?;
    back.close().await;
    other.close().await;
    relay.stop().await?;

    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    let actions: Vec<_> = reader
        .admin_actions()?
        .into_iter()
        .map(|row| (row.record.action, row.record.by))
        .collect();
    let eleven = TerminalId(11);
    assert_eq!(
        actions,
        [
            (
                AdminAction::Disable { terminal: eleven },
                "duty officer Li".to_owned()
            ),
            (AdminAction::Enable { terminal: eleven }, "admin".to_owned()),
        ]
    );
    let failures = reader.auth_failures(0, i64::MAX, 10)?;
    assert_eq!(
        failures
            .iter()
            .filter(|f| f.record.terminal == Some(eleven))
            .count(),
        2,
        "one refused login logged per relay run and minute, not the retries"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_clears_an_emergency_for_the_group() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut clients = relay.connect_all([DISPATCHER, 11, 12]).await;
    let answer = clients[1]
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: GROUP,
            text: "help".into(),
        }))
        .await?;
    assert!(
        matches!(&answer, Body::EmergencyState(s) if s.active),
        "{answer:?}"
    );
    for client in clients.iter_mut().filter(|c| c.terminal != 11) {
        client
            .expect_body(|b| match b {
                Body::EmergencyState(s) if s.active => Some(()),
                _ => None,
            })
            .await?;
    }

    let path = format!("/api/v1/admin/groups/{GROUP}/emergency/clear");
    let answer = admin(relay.ops, Method::POST, &path).await?;
    assert_eq!(answer, json!({"group": GROUP, "cleared": true}));
    for client in &mut clients {
        let state = client
            .expect_body(|b| match b {
                Body::EmergencyState(s) if !s.active => Some(s.clone()),
                _ => None,
            })
            .await?;
        assert_eq!((state.group_id, state.declared_by), (GROUP, 11));
        assert_eq!(state.cleared_by, 0, "no terminal cleared it");
    }
    // The declarer's emergency burst ended with the emergency.
    clients[1]
        .expect_body(|b| match b {
            Body::FloorRevoked(r) if r.group_id == GROUP => Some(()),
            _ => None,
        })
        .await?;
    // Nothing left to clear.
    let again = admin(relay.ops, Method::POST, &path).await?;
    assert_eq!(again, json!({"group": GROUP, "cleared": false}));
    for client in clients {
        client.close().await;
    }

    let data = relay.stop().await?;
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    let emergencies = reader.emergencies(Some(GroupId(GROUP)), 0, i64::MAX, 10)?;
    assert_eq!(emergencies.len(), 1);
    assert_eq!(
        emergencies[0].cleared.map(|(by, _)| by),
        Some(ADMIN_TERMINAL)
    );
    let actions: Vec<_> = reader
        .admin_actions()?
        .into_iter()
        .map(|row| row.record.action)
        .collect();
    assert_eq!(
        actions,
        [AdminAction::ClearEmergency {
            group: GroupId(GROUP)
        }]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_make_an_online_terminal_hear_a_group_or_stop() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut clients = relay.connect_all([11, OUTSIDER]).await;
    let [talker, outsider] = &mut clients[..] else {
        unreachable!()
    };
    assert!(outsider.hello.groups.iter().all(|g| g.group_id != GROUP));

    // Not a member: hears nothing of the group.
    talk(talker, GROUP, 10).await?;
    assert_eq!(heard(outsider, Duration::from_millis(300)).await, 0);

    // Added, listen-only: told, joined at once, hears the group's voice.
    let path = format!("/api/v1/admin/groups/{GROUP}/members/{OUTSIDER}");
    let (status, answer) = call(
        relay.ops,
        Method::PUT,
        &path,
        Some(TOKEN),
        Some(json!({"talk": false})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["member"], true);
    assert_eq!(answer["online"], true);
    assert_eq!(
        outsider.expect_body(regrouped).await?,
        (
            GROUP,
            i32::from(pb::RegroupChange::Added),
            i32::from(pb::RegroupReason::Admin)
        )
    );
    // The join has reached the group once the control room hears of it; a
    // floor request tells us the same from the terminal's side.
    let denied = outsider.press(GROUP).await?;
    assert!(
        matches!(&denied, Body::FloorDenied(d) if d.reason == i32::from(pb::FloorDenyReason::ListenOnly)),
        "a listen-only member asked for the floor: {denied:?}"
    );
    talk(talker, GROUP, 10).await?;
    assert_eq!(heard(outsider, Duration::from_millis(500)).await, 10);

    // Removed: told, and hears nothing any more.
    let (status, answer) = call(relay.ops, Method::DELETE, &path, Some(TOKEN), None).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["member"], false);
    assert_eq!(
        outsider.expect_body(regrouped).await?,
        (
            GROUP,
            i32::from(pb::RegroupChange::Removed),
            i32::from(pb::RegroupReason::Admin)
        )
    );
    let refused = outsider
        .request(Request::JoinGroup(pb::JoinGroup { group_id: GROUP }))
        .await?;
    assert!(matches!(refused, Body::Error(_)), "{refused:?}");
    talk(talker, GROUP, 10).await?;
    assert_eq!(heard(outsider, Duration::from_millis(300)).await, 0);

    // Added again, with talk: the change outlives a restart and the terminal
    // logs in as a member.
    let (status, _) = call(relay.ops, Method::PUT, &path, Some(TOKEN), Some(json!({}))).await?;
    assert_eq!(status, StatusCode::OK);
    for client in clients {
        client.close().await;
    }
    let data = relay.stop().await?;
    let relay = start(Some(&data)).await?;
    let mut outsider = Client::connect(relay.addr, &relay.cert, OUTSIDER).await?;
    let group = outsider
        .hello
        .groups
        .iter()
        .find(|g| g.group_id == GROUP)
        .expect("the added membership did not survive the restart");
    assert!(group.joined);
    assert!(group.rights.as_ref().is_some_and(|r| r.talk && r.listen));
    assert!(granted(&outsider.press(GROUP).await?).is_some());
    outsider.close().await;
    relay.stop().await?;
    Ok(())
}

/// Waits for `FloorIdle` of `group`; returns the burst it names.
fn floor_idle(group: u32) -> impl Fn(&Body) -> Option<u32> {
    move |body| match body {
        Body::FloorIdle(idle) if idle.group_id == group => Some(idle.burst_id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_demoted_to_listen_only_loses_the_floor_at_once() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut clients = relay.connect_all([DISPATCHER, 11, 12]).await;
    let [dispatcher, talker, listener] = &mut clients[..] else {
        unreachable!()
    };
    let path = format!("/api/v1/admin/groups/{GROUP}/members/11");

    // 11 talks; 12 hears it.
    let burst = granted(&talker.press(GROUP).await?).expect("granted");
    for seq in 0..5 {
        talker.send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(heard(listener, Duration::from_millis(300)).await, 5);
    assert_eq!(heard(dispatcher, Duration::from_millis(100)).await, 5);

    // Demoted to listen-only while talking: the floor is taken from it.
    let (status, answer) = call(
        relay.ops,
        Method::PUT,
        &path,
        Some(TOKEN),
        Some(json!({"talk": false, "by": "duty officer Li"})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["talk"], false);
    let revoked = talker
        .expect_body(|b| match b {
            Body::FloorRevoked(r) if r.group_id == GROUP => Some(*r),
            _ => None,
        })
        .await?;
    assert_eq!(revoked.burst_id, burst);
    assert_eq!(
        revoked.reason,
        i32::from(pb::FloorRevokeReason::Removed),
        "{revoked:?}"
    );
    assert_eq!(listener.expect_body(floor_idle(GROUP)).await?, burst);
    assert_eq!(dispatcher.expect_body(floor_idle(GROUP)).await?, burst);

    // What it still sends goes nowhere (past the tail grace that lets the
    // last frames before an end through).
    tokio::time::sleep(Duration::from_millis(
        ptt_relay_core::group::TAIL_GRACE_MS + 100,
    ))
    .await;
    for seq in 5..15 {
        talker.send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(heard(listener, Duration::from_millis(300)).await, 0);
    assert_eq!(heard(dispatcher, Duration::from_millis(50)).await, 0);
    let denied = talker.press(GROUP).await?;
    assert!(
        matches!(&denied, Body::FloorDenied(d) if d.reason == i32::from(pb::FloorDenyReason::ListenOnly)),
        "{denied:?}"
    );
    // It still hears the group, and the floor is free for the others.
    let burst = granted(&listener.press(GROUP).await?).expect("the floor was left taken");
    listener.send_datagram(opus::datagram(GROUP, burst, 0, 0))?;
    assert_eq!(heard(talker, Duration::from_millis(300)).await, 1);

    // Queued behind 12 and then demoted: its request goes, and is not
    // granted when 12 releases.
    call(relay.ops, Method::PUT, &path, Some(TOKEN), Some(json!({}))).await?;
    talker.expect_body(regrouped).await?;
    talker.expect_body(regrouped).await?;
    let queued = talker.press(GROUP).await?;
    assert!(matches!(queued, Body::FloorQueued(_)), "{queued:?}");
    call(
        relay.ops,
        Method::PUT,
        &path,
        Some(TOKEN),
        Some(json!({"talk": false})),
    )
    .await?;
    let denied = talker
        .expect_body(|b| match b {
            Body::FloorDenied(d) if d.group_id == GROUP => Some(d.reason),
            _ => None,
        })
        .await?;
    assert_eq!(denied, i32::from(pb::FloorDenyReason::ListenOnly));
    talker.clear();
    dispatcher.clear();
    listener.release(GROUP).await?;
    assert_eq!(dispatcher.expect_body(floor_idle(GROUP)).await?, burst);
    let granted_later = talker
        .expect_within(Duration::from_millis(500), |m| {
            matches!(&m.body, Some(Body::FloorGranted(_)))
        })
        .await;
    assert!(
        matches!(granted_later, Ok(None) | Err(_)),
        "a demoted member's queued request was granted: {granted_later:?}"
    );

    for client in clients {
        client.close().await;
    }
    let data = relay.stop().await?;
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    let by: Vec<_> = reader
        .admin_actions()?
        .into_iter()
        .map(|row| row.record.by)
        .collect();
    assert_eq!(by, ["duty officer Li", "admin", "admin"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_calls_count_the_members_as_the_admin_left_them() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, DISPATCHER).await?;
    // Offline members count too: a roll call asks everyone who should answer.
    let mut targets = async || -> anyhow::Result<u32> {
        let answer = dispatcher
            .request(Request::Alert(pb::Alert {
                text: "roll call".into(),
                target_group_ids: vec![GROUP],
                requires_ack: true,
                ..Default::default()
            }))
            .await?;
        match answer {
            Body::AlertTally(tally) => Ok(tally.targets),
            other => anyhow::bail!("{other:?}"),
        }
    };
    assert_eq!(targets().await?, 2, "11 and 12");
    admin(
        relay.ops,
        Method::PUT,
        &format!("/api/v1/admin/groups/{GROUP}/members/{OUTSIDER}"),
    )
    .await
    .expect_err("a PUT without a body is refused");
    let (status, _) = call(
        relay.ops,
        Method::PUT,
        &format!("/api/v1/admin/groups/{GROUP}/members/{OUTSIDER}"),
        Some(TOKEN),
        Some(json!({})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(targets().await?, 3, "the added member is asked");
    admin(
        relay.ops,
        Method::DELETE,
        &format!("/api/v1/admin/groups/{GROUP}/members/12"),
    )
    .await?;
    assert_eq!(targets().await?, 2, "the removed member is not");
    dispatcher.close().await;
    relay.stop().await?;
    Ok(())
}
