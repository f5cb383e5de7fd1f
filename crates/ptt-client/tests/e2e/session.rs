//! The client library against a real relay on loopback: talking with audio
//! buffered before the grant (also from the queue), a denied talk, and the
//! simple requests. Logins and reconnecting are in `session_login.rs`.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::PATIENCE;
use common::burst::{assert_burst, listen_to_burst, opus_frame};
use common::relay::{DISTRICT, Relay, SQUAD};
use ptt_client::{Client, ClientError, FloorOutcome, TalkEnd, TalkError, TalkState, Trust};
use ptt_proto::pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_pushed_before_the_grant_are_heard_in_order() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let listener = relay.client(101).await?;
    let mut heard = listener.events();
    let talker = relay.client(100).await?;
    assert_eq!(
        talker.joined(),
        vec![DISTRICT, SQUAD],
        "auto-joined at log-in"
    );

    // Speech starts at the press, before the relay has answered.
    let talk = talker.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    for n in 0..5 {
        talk.push_frame(opus_frame(n))?;
    }
    let grant = talk.granted().await?;
    for n in 5..12 {
        talk.push_frame(opus_frame(n))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let summary = talk.release().await;
    assert_eq!(summary.end, TalkEnd::Released);
    assert_eq!(summary.burst, Some(grant.burst));
    assert_eq!(summary.frames_dropped, 0);

    let heard = listen_to_burst(&mut heard, DISTRICT, 100).await?;
    assert_eq!(heard.taken, vec![(100, grant.burst)]);
    assert_burst(&heard.frames, 100, 12);
    assert_eq!(heard.frames[0].burst, grant.burst);
    assert_eq!(
        heard.idle,
        Some((grant.burst, pb::FloorIdleReason::Released))
    );
    assert!(listener.stats().voice_frames_received >= 12);
    let report = listener
        .quality()
        .take_report(Duration::from_secs(1))
        .context("report")?;
    assert_eq!(report.groups[0].frames_lost, 0);
    listener.send_quality_report(report).await?;

    talker.close().await;
    listener.close().await;
    relay.stop().await
}

/// voice.md §4: a client configured without datagrams talks and listens on
/// voice streams, one per burst, alongside datagram terminals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_datagrams_voice_flows_on_streams_both_ways() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let on_streams = |terminal| {
        let mut config = relay.config(terminal);
        config.datagrams = false;
        Client::connect(config)
    };
    let stream_listener = on_streams(101).await?;
    let mut stream_heard = stream_listener.events();
    let datagram_listener = relay.client(102).await?;
    let mut datagram_heard = datagram_listener.events();
    let stream_talker = on_streams(100).await?;

    for (talker, heard_by_streams, frames) in [
        (&stream_talker, &mut datagram_heard, 12),
        (&datagram_listener, &mut stream_heard, 15),
    ] {
        let talk = talker.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
        let grant = talk.granted().await?;
        for n in 0..frames {
            talk.push_frame(opus_frame(n))?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let summary = talk.release().await;
        assert_eq!(summary.end, TalkEnd::Released);
        assert_eq!(summary.frames_dropped, 0);
        let id = talker.terminal_id();
        let heard = listen_to_burst(heard_by_streams, DISTRICT, id).await?;
        assert_eq!(heard.frames[0].burst, grant.burst);
        // Every frame, in order, plus the end-of-burst marker if sent.
        assert_burst(&heard.frames, id, frames);
    }
    stream_talker.close().await;
    stream_listener.close().await;
    datagram_listener.close().await;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_talk_sends_its_buffered_audio_when_granted() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let holder = relay.client(102).await?;
    let listener = relay.client(101).await?;
    let mut heard = listener.events();
    let talker = relay.client(100).await?;
    let outcome = holder
        .request_floor(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal)
        .await?;
    assert!(
        matches!(outcome, FloorOutcome::Granted { .. }),
        "{outcome:?}"
    );

    let talk = talker.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    for n in 0..10 {
        talk.push_frame(opus_frame(n))?;
    }
    let deadline = Instant::now() + PATIENCE;
    while !matches!(talk.state(), TalkState::Queued { position: 1, .. }) {
        assert!(Instant::now() < deadline, "not queued: {:?}", talk.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.release(DISTRICT).await?;
    let grant = talk.granted().await?;
    talk.push_frame(opus_frame(10))?;
    let summary = talk.release().await;
    assert_eq!(
        (summary.end, summary.frames_dropped),
        (TalkEnd::Released, 0)
    );

    let heard = listen_to_burst(&mut heard, DISTRICT, 100).await?;
    // The holder sent no voice, so the first burst heard is the talker's.
    assert_eq!(heard.frames[0].burst, grant.burst);
    assert_burst(&heard.frames, 100, 11);
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_talk_discards_its_audio_and_says_why() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let listen_only = relay.client(103).await?;
    let talk = listen_only.press(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal);
    // The denial may already be back; either way this frame is never sent.
    let early = talk.push_frame(opus_frame(0));
    assert!(
        matches!(early, Ok(()) | Err(TalkError::Ended(TalkEnd::Denied(_)))),
        "{early:?}"
    );
    let refused = talk.granted().await;
    assert_eq!(
        refused,
        Err(TalkError::Ended(TalkEnd::Denied(
            pb::FloorDenyReason::ListenOnly
        )))
    );
    assert!(matches!(
        talk.push_frame(opus_frame(1)),
        Err(TalkError::Ended(TalkEnd::Denied(_)))
    ));
    let summary = talk.release().await;
    assert_eq!(summary.frames_sent, 0);
    assert_eq!(
        summary.frames_dropped,
        u64::from(early.is_ok()),
        "buffered audio discarded"
    );
    // The raw API says the same; requests about a foreign group are refused.
    let outcome = listen_only
        .request_floor(DISTRICT, pb::Priority::Normal, pb::FloorKind::Normal)
        .await?;
    assert_eq!(
        outcome,
        FloorOutcome::Denied {
            reason: pb::FloorDenyReason::ListenOnly
        }
    );
    let error = listen_only.join(SQUAD).await.expect_err("not a member");
    assert!(
        matches!(error, ClientError::NotAllowed { group: SQUAD, .. }),
        "{error:?}"
    );
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_join_leave_and_reports() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start(data.path(), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    // Trusting the relay's certificate as a CA (checked against its name)
    // works as well as pinning it.
    let mut config = relay.config(100);
    config.trust = Trust::Ca(relay.cert.clone());
    let client = Client::connect(config).await?;
    let rtt = client.ping().await?;
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    client.leave(SQUAD).await?;
    assert_eq!(client.joined(), vec![DISTRICT]);
    let joined = client.join(SQUAD).await?;
    assert_eq!(joined.group.map(|g| g.group_id), Some(SQUAD));
    assert_eq!(client.joined(), vec![DISTRICT, SQUAD]);
    client
        .send_location(pb::LocationReport {
            latitude_deg: 31.2,
            longitude_deg: 121.5,
            ..Default::default()
        })
        .await?;
    client
        .send_status(pb::StatusMessage {
            // This directory has no status code table: text only.
            code: 0,
            text: "on scene".into(),
            target: Some(pb::status_message::Target::GroupId(DISTRICT)),
            ..Default::default()
        })
        .await?;
    relay.stop().await
}
