//! The control stream's error rules (proto/voice.md §2): what the relay
//! answers to a request it cannot serve, and when it closes the connection
//! (with which code) or goes on.

use bytes::Bytes;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::directory::secret;
use ptt_tests::{Client, TestDirectory, TestRelay};

/// proto/voice.md §1: protocol error, authentication failed.
const CLOSE_PROTOCOL: u64 = 1;
const CLOSE_AUTH: u64 = 2;

fn directory() -> TestDirectory {
    TestDirectory::new().guards(100..102).group(10, 100..102)
}

fn hello(terminal: u32, version: u32) -> Request {
    Request::Hello(pb::Hello {
        protocol_version: version,
        terminal_id: terminal,
        secret: Bytes::from(secret(terminal)),
        client_version: "control-errors".into(),
        capabilities: Some(pb::Capabilities {
            datagrams: true,
            ..Default::default()
        }),
        resume_token: Bytes::new(),
    })
}

fn ping() -> Request {
    Request::Ping(pb::Ping {
        client_send_time_us: 1,
    })
}

/// The reason of an `Error` answer.
fn error_reason(body: &Body) -> Option<pb::ErrorReason> {
    match body {
        Body::Error(e) => pb::ErrorReason::try_from(e.reason).ok(),
        _ => None,
    }
}

async fn opened(relay: &TestRelay, terminal: u32) -> anyhow::Result<Client> {
    let endpoint = ptt_tests::client::endpoint(&relay.cert)?;
    Client::open(endpoint, relay.addr, terminal).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_hello_refusals_say_why_and_close_with_their_code() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;

    // A request before Hello: NOT_AUTHENTICATED (answering it), then code 1.
    let mut early = opened(&relay, 100).await?;
    let answer = early.request(ping()).await?;
    assert_eq!(
        error_reason(&answer),
        Some(pb::ErrorReason::NotAuthenticated)
    );
    assert_eq!(early.close_code().await?, CLOSE_PROTOCOL);

    // Another protocol version: UNSUPPORTED_VERSION, then code 1.
    let mut future = opened(&relay, 100).await?;
    let answer = future.request(hello(100, 2)).await?;
    assert_eq!(
        error_reason(&answer),
        Some(pb::ErrorReason::UnsupportedVersion)
    );
    assert_eq!(future.close_code().await?, CLOSE_PROTOCOL);

    // A terminal the directory does not know: AUTH_FAILED, as a wrong
    // secret (which ids exist is not told), then code 2.
    let mut stranger = opened(&relay, 4242).await?;
    let answer = stranger.request(hello(4242, 1)).await?;
    assert_eq!(error_reason(&answer), Some(pb::ErrorReason::AuthFailed));
    assert_eq!(stranger.close_code().await?, CLOSE_AUTH);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_answers_bad_requests_and_goes_on_until_too_many_are_malformed()
-> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut client = Client::connect(relay.addr, &relay.cert, 100).await?;

    // An empty body: UNSUPPORTED_REQUEST with its request id; still served.
    let id = client
        .send_message(pb::ClientMessage {
            request_id: 77,
            body: None,
        })
        .await?;
    let answer = client
        .expect(|m| m.request_id == id)
        .await?
        .body
        .expect("a body");
    assert_eq!(
        error_reason(&answer),
        Some(pb::ErrorReason::UnsupportedRequest)
    );
    assert!(matches!(client.request(ping()).await?, Body::Pong(_)));

    // A second Hello: ALREADY_AUTHENTICATED; still served.
    let answer = client.request(hello(100, 1)).await?;
    assert_eq!(
        error_reason(&answer),
        Some(pb::ErrorReason::AlreadyAuthenticated)
    );
    assert!(matches!(client.request(ping()).await?, Body::Pong(_)));

    // An undecodable message (a frame of 3 bytes that are no protobuf):
    // MALFORMED, unanswerable so with request id 0; still served.
    client.send_raw(&[3, 0xff, 0xff, 0xff]).await?;
    let malformed = client
        .expect(|m| {
            m.body
                .as_ref()
                .and_then(error_reason)
                .is_some_and(|r| r == pb::ErrorReason::Malformed)
        })
        .await?;
    assert_eq!(malformed.request_id, 0);
    assert!(matches!(client.request(ping()).await?, Body::Pong(_)));

    // 16 malformed messages are tolerated; the 17th cuts the terminal off
    // with code 1. The terminal beside it is not touched.
    let mut other = Client::connect(relay.addr, &relay.cert, 101).await?;
    for _ in 0..15 {
        client.send_raw(&[3, 0xff, 0xff, 0xff]).await?;
    }
    assert!(matches!(client.request(ping()).await?, Body::Pong(_)));
    client.send_raw(&[3, 0xff, 0xff, 0xff]).await?;
    assert_eq!(client.close_code().await?, CLOSE_PROTOCOL);
    assert!(matches!(other.request(ping()).await?, Body::Pong(_)));
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_application_protocol_is_refused_in_the_handshake() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let endpoint = ptt_tests::client::endpoint_speaking(&relay.cert, b"sip/2.0", true)?;
    let refused = endpoint.connect(relay.addr, "localhost")?.await;
    // TLS alert no_application_protocol (120) as a QUIC crypto error.
    match refused {
        Err(quinn::ConnectionError::ConnectionClosed(close)) => {
            assert_eq!(u64::from(close.error_code), 0x100 + 120, "{close}");
        }
        other => panic!("a foreign ALPN got {other:?}"),
    }
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_text_over_1024_bytes_is_malformed() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut client = Client::connect(relay.addr, &relay.cert, 100).await?;
    let status = |text: String| {
        Request::StatusMessage(pb::StatusMessage {
            text,
            target: Some(pb::status_message::Target::Dispatchers(true)),
            ..Default::default()
        })
    };
    let answer = client.request(status("x".repeat(1025))).await?;
    assert_eq!(error_reason(&answer), Some(pb::ErrorReason::Malformed));
    let answer = client.request(status("x".repeat(1024))).await?;
    assert!(
        matches!(answer, Body::Ack(_)),
        "1,024 bytes are taken: {answer:?}"
    );
    relay.stop().await?;
    Ok(())
}
