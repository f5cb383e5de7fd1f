//! The console port: a dispatcher's browser session over WebTransport,
//! opened as a browser opens it (the certificate pinned by the hash the ops
//! port serves), is a terminal session like any other.

use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_proto::voice::VoiceDatagram;
use ptt_tests::client::granted;
use ptt_tests::console::ConsoleClient;
use ptt_tests::directory::secret;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

fn district() -> TestDirectory {
    TestDirectory::new()
        .dispatcher(1)
        .guards(100..102)
        .group_with(10, "district", [1, 100, 101], &[])
}

/// What the console page reads before it connects.
async fn console_port(relay: &TestRelay) -> anyhow::Result<serde_json::Value> {
    let url = format!("http://{}/api/v1/console", relay.ops);
    Ok(reqwest::get(url).await?.error_for_status()?.json().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_talks_and_listens_over_webtransport_like_a_terminal() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let port = console_port(&relay).await?;
    assert_eq!(port["port"], u64::from(relay.console.port()));
    assert_eq!(port["path"], "/ptt");
    let hash = port["certificate_sha256"]
        .as_str()
        .expect("hash")
        .to_owned();

    let mut console = ConsoleClient::login(relay.console, &hash, 1, secret(1).as_bytes())
        .await?
        .map_err(|refused| anyhow::anyhow!("console refused: {refused:?}"))?;
    assert!(console.hello.datagrams, "voice in datagrams");
    assert!(
        console
            .hello
            .groups
            .iter()
            .any(|g| g.group_id == 10 && g.joined)
    );
    let mut guard = Client::connect(relay.addr, &relay.cert, 100).await?;

    // The console talks; the guard hears it.
    let answer = console
        .control
        .request(Request::FloorRequest(pb::FloorRequest {
            group_id: 10,
            ..Default::default()
        }))
        .await?;
    let burst = granted(&answer).expect("the console is granted the floor");
    console.send_datagram(opus::datagram(10, burst, 1, 0))?;
    let heard = guard
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("the guard hears the console");
    assert_eq!((heard.header.talker_id, heard.header.sequence), (1, 1));
    let taken = guard
        .expect_body(|b| match b {
            Body::FloorTaken(t) => Some(t.holder_terminal_id),
            _ => None,
        })
        .await?;
    assert_eq!(taken, 1);
    console
        .control
        .request(Request::FloorRelease(pb::FloorRelease {
            group_id: 10,
            burst_id: burst,
            last_sequence: Some(1),
        }))
        .await?;

    // The guard talks; the console hears it, without WebTransport's prefix.
    let answer = guard.press(10).await?;
    let burst = granted(&answer).expect("the guard is granted the floor");
    guard.send_datagram(opus::datagram(10, burst, 5, 0))?;
    let datagram = console
        .recv_datagram(Duration::from_secs(5))
        .await
        .expect("the console hears the guard");
    let heard = VoiceDatagram::parse(datagram)?;
    assert_eq!((heard.header.talker_id, heard.header.sequence), (100, 5));
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_with_a_wrong_secret_is_told_so_and_closed() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let port = console_port(&relay).await?;
    let hash = port["certificate_sha256"].as_str().expect("hash");
    let refused = match ConsoleClient::login(relay.console, hash, 1, b"not the secret").await? {
        Ok(_) => anyhow::bail!("a wrong secret was let in"),
        Err(error) => error,
    };
    assert_eq!(refused.reason(), pb::ErrorReason::AuthFailed);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_port_opens_only_its_path_with_only_its_certificate() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let port = console_port(&relay).await?;
    let hash = port["certificate_sha256"].as_str().expect("hash");
    // Another path is answered 404: no session.
    assert!(
        ConsoleClient::open(relay.console, hash, "/elsewhere")
            .await
            .is_err()
    );
    // Another certificate hash: the browser's pin fails the handshake.
    let other = "00".repeat(32);
    assert!(
        ConsoleClient::open(relay.console, &other, "/ptt")
            .await
            .is_err()
    );
    // The voice port is not the console port: it speaks ptt/1, not h3.
    assert!(ConsoleClient::open(relay.addr, hash, "/ptt").await.is_err());
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_that_breaks_the_rules_is_cut_off_like_a_terminal() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district()).await?;
    let port = console_port(&relay).await?;
    let hash = port["certificate_sha256"].as_str().expect("hash");
    let mut console = ConsoleClient::login(relay.console, hash, 1, secret(1).as_bytes())
        .await?
        .map_err(|refused| anyhow::anyhow!("console refused: {refused:?}"))?;
    let bystander = Client::connect(relay.addr, &relay.cert, 100).await?;
    // A length prefix of 70,000 bytes (varint), beyond the 64 KiB limit:
    // answered as for a terminal, then closed with code 1, which the
    // browser reads from the session's close.
    console.control.send_raw(&[0xf0, 0xa2, 0x04]).await?;
    let error = console
        .control
        .inbox
        .expect_body(|body| match body {
            Body::Error(error) => Some(error.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(
        error.reason(),
        pb::ErrorReason::MessageTooLarge,
        "{error:?}"
    );
    assert_eq!(
        console.close_code().await?,
        1,
        "proto/voice.md §2.3: code 1"
    );
    assert!(bystander.conn.close_reason().is_none(), "the others stay");
    relay.stop().await?;
    Ok(())
}
