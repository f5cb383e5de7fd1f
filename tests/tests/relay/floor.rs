//! Floor control through the real relay: queueing, pre-emption, timers,
//! late entry, disconnects and ACLs, over QUIC on loopback.

use std::time::Duration;

use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

/// Past the relay's tail window (frames of an ended burst are forwarded
/// for `TAIL_GRACE_MS` after it), with a margin for a loaded machine.
const PAST_THE_TAIL: Duration = Duration::from_millis(ptt_relay_core::group::TAIL_GRACE_MS + 200);

fn district(guards: u32) -> TestDirectory {
    TestDirectory::new()
        .dispatcher(1)
        .guards(100..100 + guards)
        .group_with(
            10,
            "district",
            std::iter::once(1).chain(100..100 + guards),
            &[],
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_simultaneous_requests_one_grant_the_rest_served_in_order() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(100)).await?;
    let mut guards = relay.connect_all(100..200).await;

    // Everyone presses at once.
    let mut ids = Vec::new();
    for guard in &mut guards {
        ids.push(
            guard
                .send(pb::client_message::Body::FloorRequest(pb::FloorRequest {
                    group_id: 10,
                    priority: pb::Priority::Normal.into(),
                    kind: pb::FloorKind::Normal.into(),
                }))
                .await?,
        );
    }
    // Exactly one grant; 99 queued with distinct positions 1..=99.
    let mut granted_to = Vec::new();
    let mut positions = Vec::new();
    for (guard, id) in guards.iter_mut().zip(&ids) {
        let answer = guard.expect(|m| m.request_id == *id).await?;
        match answer.body {
            Some(Body::FloorGranted(_)) => granted_to.push(guard.terminal),
            Some(Body::FloorQueued(q)) => positions.push((q.position, guard.terminal)),
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(granted_to.len(), 1, "one grant");
    positions.sort();
    assert_eq!(
        positions.iter().map(|p| p.0).collect::<Vec<_>>(),
        (1..=99).collect::<Vec<_>>()
    );

    // Each holder releases; the queue head is granted next, in queue order.
    let mut order = vec![granted_to[0]];
    let expected: Vec<u32> = positions.iter().map(|p| p.1).collect();
    let mut holder = granted_to[0];
    for next in &expected {
        let index = (holder - 100) as usize;
        let ack = guards[index].release(10).await?;
        assert!(matches!(ack, Body::Ack(_)), "release acknowledged: {ack:?}");
        let next_index = (next - 100) as usize;
        guards[next_index].expect_body(granted).await?;
        order.push(*next);
        holder = *next;
    }
    assert_eq!(order.len(), 100, "all hundred spoke");
    assert_eq!(&order[1..], &expected[..], "served in queue order");
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatcher_preempts_a_guard() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(2)).await?;
    let mut all = relay.connect_all([1, 100, 101]).await.into_iter();
    let (mut dispatcher, mut guard, mut listener) = (
        all.next().expect("dispatcher"),
        all.next().expect("guard"),
        all.next().expect("listener"),
    );

    assert!(granted(&guard.press(10).await?).is_some());
    let answer = dispatcher
        .press_with(10, pb::Priority::Dispatcher, pb::FloorKind::Normal)
        .await?;
    let burst = granted(&answer).expect("dispatcher granted at once");
    let revoked = guard
        .expect_body(|b| match b {
            Body::FloorRevoked(r) => Some(r.reason),
            _ => None,
        })
        .await?;
    assert_eq!(revoked, i32::from(pb::FloorRevokeReason::Preempted));
    let taken = listener
        .expect_body(|b| match b {
            Body::FloorTaken(t) if t.holder_terminal_id == 1 => Some(t.burst_id),
            _ => None,
        })
        .await?;
    assert_eq!(taken, burst);

    // The pre-empted guard's frames are no longer forwarded; the dispatcher's are.
    guard.send_datagram(opus::datagram(10, 1, 0, 0))?;
    dispatcher.send_datagram(opus::datagram(10, burst, 0, 0))?;
    let heard = listener
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("voice");
    assert_eq!(heard.header.talker_id, 1);
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_limit_revokes_the_holder_and_grants_the_next() -> anyhow::Result<()> {
    let directory = TestDirectory::new().guards(100..103).group_with(
        10,
        "other",
        100..103,
        &["talk-limit = \"300ms\"", "revoke-grace = \"100ms\""],
    );
    let relay = TestRelay::start(&directory).await?;
    let mut guards = relay.connect_all(100..103).await;
    let answer = guards[0].press(10).await?;
    let grant = match answer {
        Body::FloorGranted(g) => g,
        other => anyhow::bail!("not granted: {other:?}"),
    };
    assert_eq!(grant.talk_limit_ms, 300);
    assert!(matches!(guards[1].press(10).await?, Body::FloorQueued(_)));
    let revoked = guards[0]
        .expect_body(|b| match b {
            Body::FloorRevoked(r) => Some(*r),
            _ => None,
        })
        .await?;
    assert_eq!(revoked.reason, i32::from(pb::FloorRevokeReason::TalkLimit));
    assert_eq!(revoked.grace_ms, 100);
    guards[1].expect_body(granted).await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_entrant_learns_the_holder_and_hears_the_next_frame() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(3)).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let burst = granted(&talker.press(10).await?).expect("granted");

    // A terminal that logs in mid-burst is told who talks...
    let mut late = Client::connect(relay.addr, &relay.cert, 101).await?;
    let taken = late
        .expect_body(|b| match b {
            Body::FloorTaken(t) => Some(t.clone()),
            _ => None,
        })
        .await?;
    assert_eq!((taken.holder_terminal_id, taken.burst_id), (100, burst));
    // ...and one that joins explicitly gets it in JoinOk.
    let mut rejoin = Client::connect(relay.addr, &relay.cert, 102).await?;
    let left = rejoin
        .request(pb::client_message::Body::LeaveGroup(pb::LeaveGroup {
            group_id: 10,
        }))
        .await?;
    assert!(matches!(left, Body::LeaveOk(_)));
    let joined = rejoin
        .request(pb::client_message::Body::JoinGroup(pb::JoinGroup {
            group_id: 10,
        }))
        .await?;
    let Body::JoinOk(ok) = joined else {
        anyhow::bail!("join refused: {joined:?}")
    };
    assert_eq!(ok.floor.map(|f| f.holder_terminal_id), Some(100));

    // Both hear the burst's next frame.
    talker.send_datagram(opus::datagram(10, burst, 7, 0))?;
    for listener in [&late, &rejoin] {
        let frame = listener
            .recv_voice(Duration::from_secs(5))
            .await
            .expect("voice");
        assert_eq!((frame.header.talker_id, frame.header.sequence), (100, 7));
    }
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_disconnect_frees_the_floor() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(2)).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let mut other = Client::connect(relay.addr, &relay.cert, 101).await?;
    assert!(granted(&talker.press(10).await?).is_some());
    assert!(matches!(other.press(10).await?, Body::FloorQueued(_)));
    talker.close().await;
    other.expect_body(granted).await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_only_member_cannot_talk() -> anyhow::Result<()> {
    let directory = district(2).listen_only(10, 101);
    let relay = TestRelay::start(&directory).await?;
    let mut listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let answer = listener.press(10).await?;
    let Body::FloorDenied(denied) = answer else {
        anyhow::bail!("not denied: {answer:?}")
    };
    assert_eq!(denied.reason, i32::from(pb::FloorDenyReason::ListenOnly));

    // Its frames are dropped, while it still hears the group.
    listener.send_datagram(opus::datagram(10, 0, 0, 0))?;
    let burst = granted(&talker.press(10).await?).expect("granted");
    talker.send_datagram(opus::datagram(10, burst, 0, 0))?;
    let heard = listener
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("voice");
    assert_eq!(heard.header.talker_id, 100);
    assert!(
        talker
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none(),
        "no echo"
    );
    assert!(
        relay
            .metrics
            .dropped(ptt_relay_core::metrics::DropReason::NotHolder)
            >= 1
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_frames_overtaken_by_a_release_are_still_heard() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(3)).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    let mut next = Client::connect(relay.addr, &relay.cert, 102).await?;

    // Voice and control travel separately: here the release arrives first.
    let burst = granted(&talker.press(10).await?).expect("granted");
    assert!(matches!(talker.release(10).await?, Body::Ack(_)));
    talker.send_datagram(opus::datagram(10, burst, 9, 0))?;
    let tail = listener
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("tail frame");
    assert_eq!((tail.header.talker_id, tail.header.sequence), (100, 9));

    // Not once somebody else talks, and not long after.
    let other = granted(&next.press(10).await?).expect("next talker");
    talker.send_datagram(opus::datagram(10, burst, 10, 0))?;
    next.send_datagram(opus::datagram(10, other, 0, 0))?;
    let heard = listener
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("voice");
    assert_eq!(
        heard.header.talker_id, 102,
        "no voice mixed into the next burst"
    );
    assert!(matches!(next.release(10).await?, Body::Ack(_)));
    // The tail window is a time: only waiting it out shows it closed.
    tokio::time::sleep(PAST_THE_TAIL).await;
    talker.send_datagram(opus::datagram(10, burst, 11, 0))?;
    assert!(
        listener
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none()
    );

    // Nor in the talker's own next burst, granted within the tail grace:
    // a late frame of the previous burst is not stamped as the new one's.
    let first = granted(&talker.press(10).await?).expect("granted");
    assert!(matches!(talker.release(10).await?, Body::Ack(_)));
    let again = granted(&talker.press(10).await?).expect("granted again");
    assert_ne!(first, again);
    talker.send_datagram(opus::datagram(10, first, 40, 0))?;
    talker.send_datagram(opus::datagram(10, again, 0, 0))?;
    let heard = listener
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("voice");
    assert_eq!(
        (heard.header.burst_id, heard.header.sequence),
        (again, 0),
        "a late frame of the previous burst landed in the new one"
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_sent_after_the_release_is_heard() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(2)).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    let burst = granted(&talker.press(10).await?).expect("granted");
    // The release says frame 9 was the last: it overtakes frame 9, and
    // frame 10 is sent after it, within the tail window.
    let released = talker
        .request(pb::client_message::Body::FloorRelease(pb::FloorRelease {
            group_id: 10,
            burst_id: burst,
            last_sequence: Some(9),
        }))
        .await?;
    assert!(matches!(released, Body::Ack(_)));
    talker.send_datagram(opus::datagram(10, burst, 9, 0))?;
    talker.send_datagram(opus::datagram(10, burst, 10, 0))?;
    let tail = listener.recv_voice(Duration::from_secs(5)).await;
    assert_eq!(
        tail.map(|v| v.header.sequence),
        Some(9),
        "the overtaken frame"
    );
    let after = listener.recv_voice(Duration::from_millis(300)).await;
    assert!(after.is_none(), "a frame sent after the release: {after:?}");
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_release_of_an_earlier_burst_does_not_end_the_current_one() -> anyhow::Result<()> {
    let relay = TestRelay::start(&district(2)).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let listener = Client::connect(relay.addr, &relay.cert, 101).await?;
    let first = granted(&talker.press(10).await?).expect("granted");
    assert!(matches!(talker.release(10).await?, Body::Ack(_)));
    let second = granted(&talker.press(10).await?).expect("granted again");
    assert_ne!(first, second);

    let stale = talker
        .request(pb::client_message::Body::FloorRelease(pb::FloorRelease {
            group_id: 10,
            burst_id: first,
            last_sequence: None,
        }))
        .await?;
    assert!(matches!(stale, Body::Ack(_)));
    // Past the tail grace, so only a burst still held is forwarded.
    tokio::time::sleep(PAST_THE_TAIL).await;
    talker.send_datagram(opus::datagram(10, second, 0, 0))?;
    let heard = listener
        .recv_voice(Duration::from_secs(5))
        .await
        .expect("still talking");
    assert_eq!(heard.header.burst_id, second);
    relay.stop().await?;
    Ok(())
}
