//! A dispatcher's all-call across a cluster: the dispatcher on one relay
//! takes every all-call group (each decided by its owner, wherever that
//! is), and every listener of those groups, on any relay, hears each frame
//! exactly once, even a guard who is a member of two of them.

use std::time::Duration;

use anyhow::ensure;
use ptt_proto::pb::{self, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::nats::NatsServer;
use ptt_tests::{Client, TestDirectory, opus};

use crate::in_process;

const DISPATCHER: u32 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_call_on_one_relay_is_heard_once_by_every_listener_of_every_relay()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let all_call = ["all-call = true"];
    let directory = TestDirectory::new()
        .dispatcher(DISPATCHER)
        .guards(100..=103)
        .group_with(10, "district", [DISPATCHER, 100], &all_call)
        .group_with(11, "other", [DISPATCHER, 100, 101], &all_call)
        .group_with(12, "other", [DISPATCHER, 102], &all_call)
        .group(13, [DISPATCHER, 103]);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    // B's guard takes group 12's floor first: B owns it, so the all-call
    // reaches that group through its owner on another relay.
    let mut owner_of_12 = Client::connect(b.addr, &b.cert, 102).await?;
    ensure!(
        granted(&owner_of_12.press(12).await?).is_some(),
        "B's press"
    );
    ensure!(matches!(owner_of_12.release(12).await?, Body::Ack(_)));
    let mut dispatcher = Client::connect(a.addr, &a.cert, DISPATCHER).await?;
    let mut in_two = Client::connect(b.addr, &b.cert, 100).await?;
    let mut in_one = Client::connect(b.addr, &b.cert, 101).await?;
    let outside = Client::connect(b.addr, &b.cert, 103).await?;

    let answer = dispatcher
        .press_with(0, pb::Priority::Dispatcher, pb::FloorKind::Broadcast)
        .await?;
    ensure!(
        matches!(answer, Body::FloorGranted(ref g) if g.group_id == 0),
        "{answer:?}"
    );
    for group in [10, 11, 12] {
        dispatcher
            .expect_body(|b| match b {
                Body::FloorGranted(g) if g.group_id == group => Some(()),
                _ => None,
            })
            .await?;
    }
    // B mirrors every grant before the first frame matters.
    for (listener, group) in [(&mut in_two, 10), (&mut in_one, 11)] {
        listener
            .expect_body(|b| match b {
                Body::FloorTaken(t)
                    if t.group_id == group && t.holder_terminal_id == DISPATCHER =>
                {
                    Some(())
                }
                _ => None,
            })
            .await?;
    }
    let taken = owner_of_12
        .expect_body(|b| match b {
            Body::FloorTaken(t) if t.group_id == 12 && t.holder_terminal_id == DISPATCHER => {
                Some(t.clone())
            }
            _ => None,
        })
        .await?;
    ensure!(
        taken.kind == i32::from(pb::FloorKind::Broadcast),
        "{taken:?}"
    );
    for sequence in 0..20 {
        dispatcher.send_datagram(opus::datagram(0, 0, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let covered: [(&Client, &[u32]); 3] = [
        (&in_two, &[10, 11]),
        (&in_one, &[11]),
        (&owner_of_12, &[12]),
    ];
    for (listener, groups) in covered {
        let mut heard = Vec::new();
        while let Some(frame) = listener.recv_voice(Duration::from_millis(800)).await {
            ensure!(frame.header.talker_id == DISPATCHER);
            ensure!(
                groups.contains(&frame.header.group_id) && frame.header.burst_id != 0,
                "terminal {} got group {} burst {}",
                listener.terminal,
                frame.header.group_id,
                frame.header.burst_id
            );
            heard.push(frame.header.sequence);
        }
        ensure!(
            heard == (0..20).collect::<Vec<u16>>(),
            "terminal {} heard {heard:?}",
            listener.terminal
        );
    }
    ensure!(
        outside
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none(),
        "a guard of no all-call group heard the all-call"
    );
    ensure!(matches!(dispatcher.release(0).await?, Body::Ack(_)));
    owner_of_12
        .expect_body(|b| match b {
            Body::FloorIdle(i) if i.group_id == 12 => Some(()),
            _ => None,
        })
        .await?;
    drop((dispatcher, in_two, in_one, outside, owner_of_12));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}
