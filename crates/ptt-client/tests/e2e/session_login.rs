//! The client library's sessions against a real relay on loopback: login
//! failures with distinct errors, reconnecting by itself after the relay
//! restarts, and a session taken over by another login.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::burst::{assert_burst, listen_to_burst, opus_frame};
use common::expect;
use common::relay::{DISTRICT, Relay, SQUAD};
use ptt_client::{Client, ClientError, Event, TalkEnd, Trust};
use ptt_proto::pb;
use tempfile::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_have_distinct_errors() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;

    let mut wrong_secret = relay.config(100);
    wrong_secret.secret = b"guess".to_vec();
    let error = Client::connect(wrong_secret).await.expect_err("refused");
    assert_eq!(error, ClientError::AuthFailed);

    // Another relay's certificate (generated in another data directory).
    let other: TempDir = tempfile::tempdir()?;
    let identity = ptt_relay_core::tls::Identity::load_or_generate(other.path())?;
    let mut wrong_cert = relay.config(100);
    wrong_cert.trust = Trust::Pinned(identity.cert_path.clone());
    let error = Client::connect(wrong_cert).await.expect_err("refused");
    assert!(
        matches!(error, ClientError::CertificateNotTrusted(_)),
        "{error:?}"
    );

    // Nobody answers on this port: a bound UDP socket that never replies.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let mut unreachable = relay.config(100);
    unreachable.server = silent.local_addr()?;
    unreachable.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let error = Client::connect(unreachable).await.expect_err("refused");
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A missing certificate file names the file.
    let mut missing = relay.config(100);
    missing.trust = Trust::Pinned(data.path().join("nope.pem"));
    let error = Client::connect(missing).await.expect_err("refused");
    assert!(
        matches!(error, ClientError::CertificateFile { .. }),
        "{error:?}"
    );

    // The right credentials still work.
    relay.client(100).await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_relay_restarts_and_can_talk() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = relay.addr;
    let client = relay.client(100).await?;
    let mut events = client.events();
    // The user left the squad: a reconnect must not bring it back.
    client.leave(SQUAD).await?;
    assert!(client.session().is_some());

    relay.stop().await?;
    let will_reconnect = expect(&mut events, |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(*will_reconnect),
        _ => None,
    })
    .await?;
    assert!(will_reconnect);
    assert!(!client.is_connected());
    assert_eq!(client.ping().await, Err(ClientError::Disconnected));

    let relay = Relay::start(data.path(), addr).await?;
    let groups = expect(&mut events, |e| match e {
        Event::Reconnected { groups, .. } => Some(groups.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(groups, vec![DISTRICT], "rejoined as before, squad left");
    assert_eq!(client.joined(), vec![DISTRICT]);
    assert!(client.is_connected());
    assert_eq!(client.stats().reconnects, 1);

    // And it can talk again.
    let listener = relay.client(101).await?;
    let mut heard = listener.events();
    let talk = client.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    for n in 0..3 {
        talk.push_frame(opus_frame(n))?;
    }
    talk.granted().await?;
    let summary = talk.release().await;
    assert_eq!(summary.end, TalkEnd::Released);
    let heard = listen_to_burst(&mut heard, DISTRICT, 100).await?;
    assert_burst(&heard.frames, 100, 3);
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_taken_over_by_another_login_does_not_fight_back() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let first = relay.client(100).await?;
    let mut events = first.events();
    let second = relay.client(100).await?;
    // The relay sends GoingAway(SESSION_REPLACED), then closes with code 4
    // once it was delivered; either says not to reconnect.
    let will_reconnect = expect(&mut events, |e| match e {
        Event::Disconnected { will_reconnect, .. } => Some(*will_reconnect),
        _ => None,
    })
    .await?;
    assert!(
        !will_reconnect,
        "reconnecting would throw the new session out"
    );
    assert_eq!(
        first.ping().await,
        Err(ClientError::Replaced { terminal: 100 })
    );
    // The new session is undisturbed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.ping().await?;
    assert!(second.is_connected());
    relay.stop().await
}
