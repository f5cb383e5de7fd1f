//! Voice fan-out through the real relay: exactness at 3 groups × 100
//! terminals, and isolation from a terminal that sends garbage.

use std::collections::HashMap;
use std::time::Duration;

use ptt_proto::pb::{self, server_message::Body};
use ptt_relay_core::metrics::DropReason;
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

const GROUPS: u32 = 3;
const PER_GROUP: u32 = 100;
const FRAMES: u16 = 50;

/// Group `g` (10, 11, 12) holds terminals `1000 * (g - 9) ..+ 100`.
fn members(group: u32) -> std::ops::Range<u32> {
    let first = 1000 * (group - 9);
    first..first + PER_GROUP
}

/// Every voice datagram a client receives until `quiet` passes without one.
async fn drain_voice(client: &Client, quiet: Duration) -> Vec<(u32, u32, u16)> {
    let mut heard = Vec::new();
    while let Some(frame) = client.recv_voice(quiet).await {
        heard.push((
            frame.header.group_id,
            frame.header.talker_id,
            frame.header.sequence,
        ));
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_gets_every_frame_of_the_holder_once_and_in_order() -> anyhow::Result<()> {
    let mut directory = TestDirectory::new();
    for group in 10..10 + GROUPS {
        directory = directory
            .guards(members(group))
            .group(group, members(group));
    }
    let relay = TestRelay::start(&directory).await?;
    let ids: Vec<u32> = (10..10 + GROUPS).flat_map(members).collect();
    let mut clients = relay.connect_all(ids).await;

    // The first member of each group talks.
    let mut bursts = HashMap::new();
    for group in 10..10 + GROUPS {
        let talker = clients
            .iter_mut()
            .find(|c| c.terminal == members(group).start)
            .expect("talker");
        let burst = granted(&talker.press(group).await?).expect("granted");
        bursts.insert(group, burst);
    }
    // 50 fps, interleaved across the three groups, like three live calls.
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..FRAMES {
        ticker.tick().await;
        for group in 10..10 + GROUPS {
            let talker = clients
                .iter()
                .find(|c| c.terminal == members(group).start)
                .expect("talker");
            talker.send_datagram(opus::datagram(group, bursts[&group], seq, 0))?;
        }
    }

    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        tasks.spawn(async move {
            let heard = drain_voice(&client, Duration::from_millis(1500)).await;
            (client, heard)
        });
    }
    let mut checked = 0;
    while let Some(result) = tasks.join_next().await {
        let (client, heard) = result?;
        let group = 10 + client.terminal / 1000 - 1;
        let talker = members(group).start;
        if client.terminal == talker {
            assert!(heard.is_empty(), "talker {talker} got its own voice back");
        } else {
            let expected: Vec<(u32, u32, u16)> =
                (0..FRAMES).map(|seq| (group, talker, seq)).collect();
            assert_eq!(
                heard, expected,
                "terminal {} must hear exactly its group's holder, once, in order",
                client.terminal
            );
        }
        checked += 1;
    }
    assert_eq!(checked, GROUPS * PER_GROUP);
    let forwarded = relay.metrics.forwarded.get();
    assert_eq!(
        forwarded,
        u64::from(GROUPS * (PER_GROUP - 1)) * u64::from(FRAMES)
    );
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_sending_garbage_does_not_disturb_the_others() -> anyhow::Result<()> {
    let directory = TestDirectory::new()
        .guards(100..110)
        .group(10, 100..110)
        .group(11, [109]);
    let relay = TestRelay::start(&directory).await?;
    let mut talker = Client::connect(relay.addr, &relay.cert, 100).await?;
    let listeners = relay.connect_all(101..109).await;
    let mut rogue = Client::connect(relay.addr, &relay.cert, 109).await?;
    let burst = granted(&talker.press(10).await?).expect("granted");

    let rogue_task = tokio::spawn(async move {
        // A bounded flood: bad headers, not-Opus payloads, unknown groups,
        // frames without the floor and over-size datagrams.
        for i in 0..2000u16 {
            let datagram = match i % 5 {
                0 => bytes::Bytes::from_static(b"\xff\xff\xff"),
                1 => {
                    let mut d = opus::datagram(10, 0, i, 0).to_vec();
                    d[24] = 0xff; // code-3 TOC with no frame count byte
                    d.truncate(25);
                    d.into()
                }
                2 => opus::datagram(999, 0, i, 0),
                3 => opus::datagram(10, 0, i, 0),
                _ => bytes::Bytes::from(vec![0x10; 1100]),
            };
            let _ = rogue.send_datagram(datagram);
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // Garbage on the control stream: a malformed protobuf, then a frame
        // length beyond the 64 KiB limit.
        rogue.send_raw(&[3, 0xff, 0xff, 0xff]).await.ok();
        rogue.send_raw(&[0xff, 0xff, 0xff, 0x7f]).await.ok();
        let closed = tokio::time::timeout(Duration::from_secs(10), rogue.conn.closed()).await;
        closed.is_ok()
    });

    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for seq in 0..FRAMES {
        ticker.tick().await;
        talker.send_datagram(opus::datagram(10, burst, seq, 0))?;
    }
    for listener in &listeners {
        let heard = drain_voice(listener, Duration::from_millis(1500)).await;
        let expected: Vec<_> = (0..FRAMES).map(|seq| (10, 100, seq)).collect();
        assert_eq!(heard, expected, "listener {} unaffected", listener.terminal);
    }
    assert!(rogue_task.await?, "the rogue terminal was cut off");
    // The talker keeps its floor and session.
    let pong = talker
        .request(pb::client_message::Body::Ping(pb::Ping {
            client_send_time_us: 1,
        }))
        .await?;
    assert!(matches!(pong, Body::Pong(_)));
    let m = &relay.metrics;
    for reason in [
        DropReason::BadHeader,
        DropReason::NotOpus,
        DropReason::UnknownGroup,
        DropReason::NotHolder,
    ] {
        assert!(m.dropped(reason) > 0, "{reason} drops counted");
    }
    assert!(m.malformed_control.get() >= 1);
    assert!(m.cut_off.get() >= 1);
    relay.stop().await?;
    Ok(())
}
