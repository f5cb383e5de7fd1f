//! Session resumption over real QUIC: the credential a login hands out logs
//! the terminal in again without argon2, after a relay restart too, and is
//! refused (counted, never hashed) once its terminal is disabled, once it
//! expired, and when altered; the client library presents it on reconnect
//! and falls back to its secret when it is refused.

mod login_support;

use std::time::Duration;

use login_support::{ADMIN_TOKEN, SERIAL, hello, production_hashes, start_on};
use ptt_client::{ClientConfig, Event, Trust};
use ptt_proto::pb;
use ptt_tests::directory::secret;
use ptt_tests::{PATIENCE, TestDirectory};

fn directory() -> TestDirectory {
    TestDirectory::new().guards(100..103).group(10, 100..103)
}

fn refused_for(answer: &Result<pb::HelloOk, pb::Error>) -> Option<pb::ErrorReason> {
    answer
        .as_ref()
        .err()
        .map(|e| pb::ErrorReason::try_from(e.reason).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_logs_in_without_hashing_after_a_restart_but_not_once_disabled()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let toml = production_hashes(&directory().to_toml(), secret);
    let data = tempfile::tempdir()?;
    let relay = start_on(&toml, data.path(), None, |_| {}).await?;
    let endpoint = ptt_tests::client::endpoint(&relay.cert)?;
    let (conn, answer) = hello(&endpoint, relay.addr, 100, secret(100).as_bytes(), b"").await?;
    let token = answer.expect("logged in").resume_token;
    assert_eq!(token.len(), 49, "version, epoch, terminal, expiry, tag");
    drop(conn);
    relay.stop().await?;

    // Restarted on the same data directory: the same key checks it.
    let relay = start_on(&toml, data.path(), None, |_| {}).await?;
    let endpoint = ptt_tests::client::endpoint(&relay.cert)?;
    let (conn, answer) = hello(&endpoint, relay.addr, 100, b"", &token).await?;
    let resumed = answer.expect("resumed after the restart");
    assert_eq!(resumed.terminal_id, 100);
    assert!(!resumed.resume_token.is_empty(), "a fresh credential");
    assert_eq!(relay.metrics.auth_resumed.get(), 1);
    assert_eq!(relay.metrics.auth_verifications.get(), 0, "no argon2");
    // Another terminal's credential does not log this one in.
    let (_, answer) = hello(&endpoint, relay.addr, 101, b"", &token).await?;
    assert_eq!(refused_for(&answer), Some(pb::ErrorReason::AuthFailed));
    assert_eq!(relay.metrics.auth_resume_invalid.get(), 1);

    // Disabled: cut off, and its credential (which proves who it is) is
    // refused with the reason.
    let (status, _) = disable(relay.ops, 100).await?;
    assert_eq!(status, reqwest::StatusCode::OK);
    tokio::time::timeout(PATIENCE, conn.closed()).await?;
    let (_, answer) = hello(&endpoint, relay.addr, 100, b"", &resumed.resume_token).await?;
    let refused = answer.expect_err("a disabled terminal resumed");
    assert_eq!(refused.reason, i32::from(pb::ErrorReason::TerminalDisabled));
    assert!(refused.detail.contains("disabled"), "{}", refused.detail);
    assert_eq!(relay.metrics.auth_resumed.get(), 1);
    assert_eq!(relay.metrics.auth_verifications.get(), 0);
    relay.stop().await?;
    Ok(())
}

/// Disables `terminal` through the admin API.
async fn disable(
    ops: std::net::SocketAddr,
    terminal: u32,
) -> anyhow::Result<(reqwest::StatusCode, String)> {
    let response = reqwest::Client::new()
        .post(format!(
            "http://{ops}/api/v1/admin/terminals/{terminal}/disable"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"by": "login test"}))
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_is_refused_and_the_secret_still_logs_in() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let data = tempfile::tempdir()?;
    let relay = start_on(&directory().to_toml(), data.path(), None, |c| {
        c.resume_ttl = Duration::from_secs(1);
    })
    .await?;
    let endpoint = ptt_tests::client::endpoint(&relay.cert)?;
    let (_, answer) = hello(&endpoint, relay.addr, 100, secret(100).as_bytes(), b"").await?;
    let token = answer.expect("logged in").resume_token;
    let (_, answer) = hello(&endpoint, relay.addr, 100, b"", &token).await?;
    assert!(answer.is_ok(), "still valid: {answer:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, answer) = hello(&endpoint, relay.addr, 100, b"", &token).await?;
    let refused = answer.expect_err("an expired credential logged in");
    assert_eq!(refused.reason, i32::from(pb::ErrorReason::AuthFailed));
    assert!(refused.detail.contains("resumption"), "{}", refused.detail);
    assert_eq!(relay.metrics.auth_resume_stale.get(), 1);
    assert_eq!(relay.metrics.auth_failures.get(), 0, "not a failed secret");
    let (_, answer) = hello(&endpoint, relay.addr, 100, secret(100).as_bytes(), b"").await?;
    assert!(answer.is_ok(), "{answer:?}");
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_credential_is_refused_and_counted() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let data = tempfile::tempdir()?;
    let relay = start_on(&directory().to_toml(), data.path(), None, |_| {}).await?;
    let endpoint = ptt_tests::client::endpoint(&relay.cert)?;
    let (_, answer) = hello(&endpoint, relay.addr, 100, secret(100).as_bytes(), b"").await?;
    let token = answer.expect("logged in").resume_token;
    let verified = relay.metrics.auth_verifications.get();
    // A later expiry, a flipped tag bit, a truncation.
    let mut later = token.to_vec();
    later[10] = later[10].wrapping_add(1);
    let mut flipped = token.to_vec();
    flipped[40] ^= 0x80;
    for altered in [later, flipped, token[..30].to_vec()] {
        let (_, answer) = hello(&endpoint, relay.addr, 100, b"", &altered).await?;
        assert_eq!(refused_for(&answer), Some(pb::ErrorReason::AuthFailed));
    }
    assert_eq!(relay.metrics.auth_resume_invalid.get(), 3);
    assert_eq!(relay.metrics.auth_resumed.get(), 0);
    assert_eq!(
        relay.metrics.auth_verifications.get(),
        verified,
        "none hashed"
    );
    // With the secret beside it, the secret is checked instead.
    let mut altered = token.to_vec();
    altered[20] ^= 1;
    let (_, answer) = hello(&endpoint, relay.addr, 100, secret(100).as_bytes(), &altered).await?;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(relay.metrics.auth_resume_invalid.get(), 4);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_library_resumes_after_a_restart_and_falls_back_to_its_secret()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let toml = directory().to_toml();
    let data = tempfile::tempdir()?;
    let relay = start_on(&toml, data.path(), None, |_| {}).await?;
    let addr = relay.addr;
    let config = ClientConfig::new(addr, Trust::Pinned(relay.cert.clone()), 100, secret(100));
    let client = ptt_client::Client::connect(config).await?;
    let mut events = client.events();

    // Restarted on the same data directory and port: the credential is enough.
    relay.stop().await?;
    let relay = start_on(&toml, data.path(), Some(addr), |_| {}).await?;
    wait_reconnected(&mut events).await?;
    assert_eq!(relay.metrics.auth_resumed.get(), 1);
    assert_eq!(relay.metrics.auth_verifications.get(), 0, "no argon2");

    // Restarted with a new key: the credential is refused, the secret is not.
    relay.stop().await?;
    std::fs::remove_file(data.path().join("pttd-resume.key"))?;
    let relay = start_on(&toml, data.path(), Some(addr), |_| {}).await?;
    wait_reconnected(&mut events).await?;
    assert_eq!(relay.metrics.auth_resume_stale.get(), 1);
    assert_eq!(relay.metrics.auth_resumed.get(), 0);
    assert_eq!(relay.metrics.auth_verifications.get(), 1, "the secret");
    assert_eq!(client.stats().reconnects, 2);
    client.close().await;
    relay.stop().await?;
    Ok(())
}

/// Waits for the client's `Reconnected`; fails on a `Disconnected` that
/// gives up.
async fn wait_reconnected(events: &mut ptt_client::Events) -> anyhow::Result<()> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Some(Event::Reconnected { .. }) => return Ok(()),
                Some(Event::Disconnected {
                    will_reconnect: false,
                    reason,
                }) => anyhow::bail!("gave up: {reason}"),
                Some(_) => {}
                None => anyhow::bail!("the client is gone"),
            }
        }
    })
    .await?
}
