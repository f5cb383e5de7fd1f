//! Disabling a terminal through the admin API over real HTTP: it is cut off
//! at once, its logins are refused (counted each time, logged once a minute),
//! it stays out across a restart, and enabling it lets it back in.

use crate::admin_port;

use std::time::{Duration, Instant};

use admin_port::{TOKEN, admin, call, start};
use ptt_calllog::{AdminAction, CallLogReader};
use ptt_directory::TerminalId;
use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::Client;
use ptt_tests::directory::secret;
use reqwest::StatusCode;
use serde_json::json;

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
    // The `GoingAway` came before the close (the relay closes once it was
    // delivered) and says not to reconnect.
    let mut guard = guard;
    let message = guard
        .expect_within(Duration::from_millis(100), |m| {
            matches!(&m.body, Some(Body::GoingAway(_)))
        })
        .await?
        .expect("GoingAway before the close");
    assert!(
        matches!(&message.body, Some(Body::GoingAway(g)) if g.reason == i32::from(pb::GoingAwayReason::AuthRevoked)),
        "{message:?}"
    );
    // The others are untouched.
    assert!(other.conn.close_reason().is_none());

    // Its right secret no longer logs in: it is told it is disabled, counted
    // apart from failures (each time), and logged once a minute.
    let failures_before = relay.metrics.auth_failures.get();
    for _ in 0..3 {
        let refused = Client::login(relay.addr, &relay.cert, 11, secret(11).as_bytes())
            .await?
            .err()
            .expect("a disabled terminal logged in");
        assert_eq!(refused.reason, i32::from(pb::ErrorReason::TerminalDisabled));
        assert!(refused.detail.contains("disabled"), "{}", refused.detail);
    }
    assert_eq!(relay.metrics.auth_disabled.get(), 3);
    assert_eq!(relay.metrics.auth_failures.get(), failures_before);
    // A wrong secret learns nothing about it: AUTH_FAILED, as for any
    // terminal, and a failure.
    let refused = Client::login(relay.addr, &relay.cert, 11, b"not the secret")
        .await?
        .err()
        .expect("a wrong secret logged in");
    assert_eq!(refused.reason, i32::from(pb::ErrorReason::AuthFailed));
    assert!(!refused.detail.contains("disabled"), "{}", refused.detail);
    assert_eq!(relay.metrics.auth_failures.get(), failures_before + 1);

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
        3,
        "one refused login of the disabled terminal per relay run and minute (not the \
         retries), and the wrong secret"
    );
    Ok(())
}
