//! The voice stream fallback (proto/voice.md §4): a terminal without QUIC
//! datagrams hears each burst on a unidirectional stream of its own and
//! talks the same way; records out of bounds stop a stream; a listener that
//! does not keep up costs only itself.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ptt_proto::pb;
use ptt_proto::voice::{self, Flags, Kind, VoiceDatagram, VoiceHeader};
use ptt_relay_core::metrics::DropReason;
use ptt_tests::client::{endpoint, endpoint_with, endpoint_without_datagrams, granted};
use ptt_tests::directory::secret;
use ptt_tests::{Client, TestDirectory, TestRelay};

const GROUP: u32 = 10;
const WAIT: Duration = Duration::from_secs(2);

fn directory() -> TestDirectory {
    TestDirectory::new().guards(100..105).group(GROUP, 100..105)
}

/// A voice frame of `len` bytes in all, as a talker sends it (talker 0).
fn frame(len: usize, burst: u32, sequence: u16, last: bool) -> Bytes {
    let header = VoiceHeader {
        kind: Kind::Voice,
        flags: Flags(if last { Flags::LAST_FRAME } else { 0 }),
        group_id: GROUP,
        talker_id: 0,
        burst_id: burst,
        sequence,
        timestamp_us: 0,
    };
    let opus = ptt_tests::opus::packet(sequence, len - voice::HEADER_LEN);
    let mut buf = BytesMut::new();
    voice::encode(&header, &opus, &mut buf).expect("fits a datagram");
    buf.freeze()
}

/// A burst of `count` 80-byte frames, the last one flagged.
fn burst_of(count: u16, burst: u32) -> Vec<Bytes> {
    (0..count)
        .map(|sequence| frame(80, burst, sequence, sequence + 1 == count))
        .collect()
}

/// Logs `terminal` in on a connection without datagram support.
async fn without_datagrams(relay: &TestRelay, terminal: u32) -> anyhow::Result<Client> {
    let endpoint = endpoint_with(&relay.cert, false)?;
    let secret = secret(terminal);
    Ok(
        Client::login_on(endpoint, relay.addr, terminal, secret.as_bytes())
            .await?
            .expect("logged in"),
    )
}

/// Asserts that `stream` carries exactly `count` frames of `talker`'s
/// `burst`, in order, and ends with FIN.
async fn hears_whole_burst(
    stream: &mut quinn::RecvStream,
    talker: u32,
    burst: u32,
    count: u16,
) -> anyhow::Result<()> {
    let (heard, finished) = Client::read_voice_stream(stream, WAIT).await?;
    let sequences: Vec<u16> = heard.iter().map(|v| v.header.sequence).collect();
    assert_eq!(
        sequences,
        (0..count).collect::<Vec<_>>(),
        "every frame, in order"
    );
    assert!(
        heard
            .iter()
            .all(|v| v.header.talker_id == talker && v.header.burst_id == burst)
    );
    assert!(heard.last().is_some_and(|v| v.header.flags.last_frame()));
    assert!(
        finished,
        "the stream ends with FIN after the burst's last frame"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_without_datagrams_hears_each_burst_on_a_stream_of_its_own() -> anyhow::Result<()>
{
    let relay = TestRelay::start(&directory()).await?;
    // A QUIC stack without datagrams, and one that has them but asks for none.
    let no_stack = without_datagrams(&relay, 101).await?;
    let no_thanks = pb::Capabilities {
        datagrams: false,
        ..Default::default()
    };
    let secret_102 = secret(102);
    let asks_none = Client::login_announcing(
        endpoint(&relay.cert)?,
        relay.addr,
        102,
        secret_102.as_bytes(),
        no_thanks,
    )
    .await?
    .expect("logged in");
    for listener in [&no_stack, &asks_none] {
        assert!(!listener.hello.datagrams, "HelloOk.datagrams says streams");
        assert_eq!(
            listener.hello.max_datagram_size,
            voice::MAX_DATAGRAM_SIZE as u32
        );
    }
    let on_datagrams = Client::connect(relay.addr, &relay.cert, 103).await?;
    assert!(on_datagrams.hello.datagrams);
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;

    for round in 0..2 {
        let burst = granted(&talker.press(GROUP).await?).expect("granted");
        for datagram in burst_of(20, burst) {
            talker.send_datagram(datagram)?;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for listener in [&no_stack, &asks_none] {
            let mut stream = listener
                .next_voice_stream(WAIT)
                .await
                .expect("a stream per burst");
            hears_whole_burst(&mut stream, 100, burst, 20).await?;
        }
        for sequence in 0..20 {
            let heard = on_datagrams
                .recv_voice(WAIT)
                .await
                .map(|v| v.header.sequence);
            assert_eq!(heard, Some(sequence), "round {round}: datagrams unchanged");
        }
        talker.release(GROUP).await?;
    }
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_without_datagrams_is_heard_and_bad_records_stop_its_stream() -> anyhow::Result<()>
{
    let relay = TestRelay::start(&directory()).await?;
    let mut talker = without_datagrams(&relay, 100).await?;
    let on_datagrams = Client::connect(relay.addr, &relay.cert, 101).await?;
    let on_streams = without_datagrams(&relay, 102).await?;

    let burst = granted(&talker.press(GROUP).await?).expect("granted");
    talker.send_on_stream(&burst_of(30, burst)).await?;
    for sequence in 0..30 {
        let heard: Option<VoiceDatagram> = on_datagrams.recv_voice(WAIT).await;
        let heard = heard.expect("every frame");
        assert_eq!(heard.header.sequence, sequence);
        assert_eq!(heard.header.talker_id, 100, "stamped by the relay");
    }
    let mut stream = on_streams.next_voice_stream(WAIT).await.expect("a stream");
    hears_whole_burst(&mut stream, 100, burst, 30).await?;

    // Records out of bounds (§4.3): the stream is stopped with code 1 and
    // counted; one too short and one too long.
    for (len, reason) in [(5u16, DropReason::BadHeader), (1101, DropReason::TooLarge)] {
        let before = relay.metrics.dropped(reason);
        let mut bad = talker.conn.open_uni().await?;
        // The relay may stop the stream as soon as it reads the length, so
        // the writes themselves may fail; what counts is that it stopped.
        let _ = bad.write_all(&len.to_be_bytes()).await;
        let _ = bad.write_all(&vec![0; usize::from(len)]).await;
        let stopped = tokio::time::timeout(WAIT, bad.stopped()).await?;
        assert_eq!(stopped?, Some(1u32.into()), "{len}-byte record");
        assert_eq!(relay.metrics.dropped(reason), before + 1);
    }
    // The session goes on: the next burst's stream is heard.
    talker.send_on_stream(&[frame(80, burst, 30, true)]).await?;
    let heard = on_datagrams
        .recv_voice(WAIT)
        .await
        .map(|v| v.header.sequence);
    assert_eq!(heard, Some(30));
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_listener_that_does_not_read_skips_ahead_and_hurts_no_one() -> anyhow::Result<()> {
    let relay = TestRelay::start(&directory()).await?;
    // A 1 KiB window: a dozen frames fill it while the listener sleeps.
    let endpoint = endpoint_without_datagrams(&relay.cert, 1024)?;
    let secret_101 = secret(101);
    let sleeper = Client::login_on(endpoint, relay.addr, 101, secret_101.as_bytes())
        .await?
        .expect("logged in");
    let on_datagrams = Client::connect(relay.addr, &relay.cert, 102).await?;
    let on_streams = without_datagrams(&relay, 103).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;

    let frames: u16 = 150;
    let burst = granted(&talker.press(GROUP).await?).expect("granted");
    let reader = tokio::spawn(async move {
        let mut stream = on_streams.next_voice_stream(WAIT).await.expect("a stream");
        let read = Client::read_voice_stream(&mut stream, Duration::from_secs(10)).await;
        (on_streams, read)
    });
    for sequence in 0..frames {
        talker.send_datagram(frame(80, burst, sequence, sequence + 1 == frames))?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for sequence in 0..frames {
        let heard = on_datagrams
            .recv_voice(WAIT)
            .await
            .map(|v| v.header.sequence);
        assert_eq!(
            heard,
            Some(sequence),
            "the datagram listener hears everything"
        );
    }
    let (_on_streams, read) = reader.await?;
    let (heard, finished) = read?;
    assert_eq!(
        heard.len(),
        usize::from(frames),
        "the reading stream listener too"
    );
    assert!(finished);

    // The sleeper's queue overflowed: its stream was reset and what was
    // queued discarded (newest wins), counted, and it was not cut off.
    assert!(relay.metrics.listener_queue_dropped.get() > 0);
    assert!(sleeper.conn.close_reason().is_none(), "still connected");
    let mut first = sleeper.next_voice_stream(WAIT).await.expect("its stream");
    let (early, finished) = Client::read_voice_stream(&mut first, WAIT).await?;
    assert!(!finished, "reset, not finished");
    assert!(early.len() < usize::from(frames));
    relay.stop().await?;
    Ok(())
}
