//! Sessions: authentication, rate limiting, graceful shutdown.

use std::time::{Duration, Instant};

use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory, TestRelay};

fn directory() -> TestDirectory {
    TestDirectory::new().guards(100..103).group(10, 100..103)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_or_unknown_terminal_is_refused_with_a_reason() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    for (terminal, secret) in [(100, &b"wrong"[..]), (4242, &b"secret-4242"[..])] {
        let refused = Client::login(relay.addr, &relay.cert, terminal, secret)
            .await?
            .err()
            .expect("refused");
        assert_eq!(refused.reason, i32::from(pb::ErrorReason::AuthFailed));
    }
    // A good login still works, and the failures were counted and logged.
    let client = Client::connect(relay.addr, &relay.cert, 100).await?;
    assert_eq!(client.hello.terminal_id, 100);
    assert_eq!(client.hello.groups.len(), 1);
    assert!(client.hello.groups[0].joined, "groups are joined at log-in");
    assert_eq!(relay.metrics.auth_failures.get(), 2);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_rate_limited() -> anyhow::Result<()> {
    let relay = TestRelay::start_with(&directory(), |c| c.auth_failures_per_minute = 3).await?;
    for _ in 0..3 {
        let refused = Client::login(relay.addr, &relay.cert, 100, b"guess")
            .await?
            .err();
        assert_eq!(
            refused.map(|e| e.reason),
            Some(i32::from(pb::ErrorReason::AuthFailed))
        );
    }
    // Even the right secret is refused unchecked for the rest of the minute.
    let limited = Client::login(relay.addr, &relay.cert, 100, b"secret-100")
        .await?
        .err();
    assert_eq!(
        limited.map(|e| e.reason),
        Some(i32::from(pb::ErrorReason::RateLimited))
    );
    assert_eq!(relay.metrics.auth_rate_limited.get(), 1);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_tells_terminals_and_logs_the_open_burst() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let mut listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    granted(&talker.press(10).await?).expect("granted");
    assert!(matches!(talker.release(10).await?, Body::Ack(_)));
    // A second burst is still open when the relay stops.
    granted(&talker.press(10).await?).expect("granted again");

    let started = Instant::now();
    let data = relay.stop().await?;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "stopped in {elapsed:?}");
    let going_away = listener
        .expect_body(|b| match b {
            Body::GoingAway(g) => Some(g.reason),
            _ => None,
        })
        .await?;
    assert_eq!(going_away, i32::from(pb::GoingAwayReason::Shutdown));

    // Both bursts are in the log after shutdown: the released one, and the
    // open one, ended by the shutdown.
    let db = rusqlite::Connection::open(data.path().join("pttd.sqlite"))?;
    let outcomes: Vec<String> = db
        .prepare("SELECT outcome FROM bursts ORDER BY id")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    assert_eq!(outcomes, ["released", "shutdown"]);
    Ok(())
}

/// A voice datagram of `len` bytes in all (header and Opus) from a client.
fn datagram_of(len: usize, burst: u32, sequence: u16) -> bytes::Bytes {
    let header = ptt_proto::voice::VoiceHeader {
        kind: ptt_proto::voice::Kind::Voice,
        flags: ptt_proto::voice::Flags(0),
        group_id: 10,
        talker_id: 0,
        burst_id: burst,
        sequence,
        timestamp_us: 0,
    };
    let opus = ptt_tests::opus::packet(sequence, len - ptt_proto::voice::HEADER_LEN);
    let mut buf = bytes::BytesMut::new();
    ptt_proto::voice::encode(&header, &opus, &mut buf).expect("fits a datagram");
    buf.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_datagram_limit_is_the_smaller_of_both_sides_and_holds_both_ways() -> anyhow::Result<()>
{
    use ptt_relay_core::metrics::DropReason;
    let relay = TestRelay::start(&directory()).await?;
    let announcing = |terminal: u32, limit: u32| {
        let (addr, cert) = (relay.addr, relay.cert.clone());
        async move {
            let capabilities = pb::Capabilities {
                datagrams: true,
                max_datagram_size: limit,
                ..Default::default()
            };
            let endpoint = ptt_tests::client::endpoint(&cert)?;
            let secret = ptt_tests::directory::secret(terminal);
            Client::login_announcing(endpoint, addr, terminal, secret.as_bytes(), capabilities)
                .await
        }
    };
    let small = announcing(101, 300).await?.expect("logged in");
    assert_eq!(small.hello.max_datagram_size, 300, "the client's limit");
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    assert_eq!(
        talker.hello.max_datagram_size,
        ptt_proto::voice::MAX_DATAGRAM_SIZE as u32,
        "the relay's limit when the client has none"
    );
    let listener = Client::connect(relay.addr, &relay.cert, 102).await?;
    let tiny = announcing(101, 24).await?;
    assert_eq!(
        tiny.err().map(|e| e.reason),
        Some(i32::from(pb::ErrorReason::Malformed)),
        "a limit with no room for a voice frame is refused"
    );

    // A 500-byte frame reaches the listener that takes it, not the small one.
    let burst = granted(&talker.press(10).await?).expect("granted");
    talker.send_datagram(datagram_of(500, burst, 0))?;
    let wait = Duration::from_millis(500);
    let heard = listener
        .recv_voice(wait)
        .await
        .expect("the listener hears it");
    assert_eq!(heard.header.sequence, 0);
    assert!(
        small.recv_voice(wait).await.is_none(),
        "500 bytes > its 300"
    );
    // One it takes arrives.
    talker.send_datagram(datagram_of(300, burst, 1))?;
    assert_eq!(
        small.recv_voice(wait).await.map(|v| v.header.sequence),
        Some(1)
    );
    assert_eq!(
        listener.recv_voice(wait).await.map(|v| v.header.sequence),
        Some(1)
    );
    talker.release(10).await?;

    // The small one's own frames are held to its limit too.
    let mut small = small;
    let burst = granted(&small.press(10).await?).expect("granted");
    small.send_datagram(datagram_of(300, burst, 0))?;
    let heard = listener.recv_voice(wait).await.map(|v| v.header.burst_id);
    assert_eq!(heard, Some(burst));
    let too_large = relay.metrics.dropped(DropReason::TooLarge);
    small.send_datagram(datagram_of(500, burst, 1))?;
    assert!(listener.recv_voice(wait).await.is_none());
    assert_eq!(relay.metrics.dropped(DropReason::TooLarge), too_large + 1);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_control_message_is_answered_then_closed_with_code_1() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    let mut rogue = Client::connect(relay.addr, &relay.cert, 100).await?;
    let bystander = Client::connect(relay.addr, &relay.cert, 101).await?;
    // A length prefix of 70,000 bytes (varint), beyond the 64 KiB limit.
    rogue.send_raw(&[0xf0, 0xa2, 0x04]).await?;
    let error = rogue
        .expect_body(|body| match body {
            Body::Error(error) => Some(error.clone()),
            _ => None,
        })
        .await?;
    assert_eq!(
        pb::ErrorReason::try_from(error.reason),
        Ok(pb::ErrorReason::MessageTooLarge),
        "{error:?}"
    );
    assert_eq!(rogue.close_code().await?, 1, "proto/voice.md §2.3: code 1");
    assert!(bystander.conn.close_reason().is_none(), "the others stay");
    relay.stop().await?;
    Ok(())
}

/// What an idle terminal costs the network with the default keep-alives
/// (the client's every 1 s, `ptt_client::config::KEEP_ALIVE`; the relay's
/// every 2 s, which the client's pings keep from firing): about one small
/// packet each way a second, measured at the relay's end of a real client's
/// connection over 10 idle seconds. The figures behind the defaults'
/// justification in proto/voice.md §1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_terminal_costs_about_one_small_packet_each_way_a_second() -> anyhow::Result<()> {
    // The relay's default keep-alive too (the test relay pings every second).
    let relay = TestRelay::start_with(&directory(), |c| {
        c.keep_alive = ptt_relay::config::Config::default().keep_alive;
    })
    .await?;
    let config = ptt_client::ClientConfig::new(
        relay.addr,
        ptt_client::Trust::Pinned(relay.cert.clone()),
        101,
        ptt_tests::directory::secret(101),
    );
    assert_eq!(config.keep_alive, Duration::from_secs(1), "the default");
    let client = ptt_client::Client::connect(config).await?;
    let group = relay.groups.get(10).expect("group 10");
    let deadline = Instant::now() + ptt_tests::PATIENCE;
    let link = loop {
        if let Some(link) = group.listeners().iter().find(|l| l.terminal == 101) {
            break link.clone();
        }
        assert!(Instant::now() < deadline, "101 never joined group 10");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Past the log-in's own traffic (joins, presence, first quality report).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = link.conn.stats();
    let idle = Duration::from_secs(10);
    tokio::time::sleep(idle).await;
    let after = link.conn.stats();
    let per_second = |a: u64, b: u64| (b - a) as f64 / idle.as_secs_f64();
    let to_relay = per_second(before.udp_rx.datagrams, after.udp_rx.datagrams);
    let to_terminal = per_second(before.udp_tx.datagrams, after.udp_tx.datagrams);
    let bytes_to_relay = per_second(before.udp_rx.bytes, after.udp_rx.bytes);
    let bytes_to_terminal = per_second(before.udp_tx.bytes, after.udp_tx.bytes);
    // UDP payload plus 28 bytes of IPv4 and UDP headers per packet.
    let per_day_mb =
        (bytes_to_relay + bytes_to_terminal + 28.0 * (to_relay + to_terminal)) * 86_400.0 / 1e6;
    eprintln!(
        "idle terminal: {to_relay:.2} packets/s ({bytes_to_relay:.0} B/s) to the relay, \
         {to_terminal:.2} packets/s ({bytes_to_terminal:.0} B/s) to the terminal: \
         {per_day_mb:.1} MB a day with IPv4/UDP headers"
    );
    assert!(
        (0.8..=1.3).contains(&to_relay),
        "{to_relay} packets/s to the relay"
    );
    assert!(
        (0.8..=1.3).contains(&to_terminal),
        "{to_terminal} packets/s to the terminal"
    );
    assert!(bytes_to_relay / to_relay < 80.0, "small packets");
    client.close().await;
    relay.stop().await?;
    Ok(())
}
