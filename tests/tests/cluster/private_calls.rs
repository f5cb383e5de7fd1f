//! Private calls in a cluster: a call between two terminals of one relay
//! stays on that relay (its temporary group's ids are every relay's), its
//! voice never on NATS; a call to a terminal of another relay is refused
//! as such.

use std::time::Duration;

use anyhow::{Context, ensure};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::nats::NatsServer;
use ptt_tests::{Client, TestDirectory, opus};

use crate::{in_process, presence};

/// `caller` calls `callee`, which accepts; returns the call's group once
/// both joined it.
async fn call(caller: &mut Client, callee: &mut Client) -> anyhow::Result<u32> {
    let answer = caller
        .request(Request::PrivateCallSetup(pb::PrivateCallSetup {
            callee_terminal_id: callee.terminal,
            ..Default::default()
        }))
        .await?;
    let Body::PrivateCallSetup(setup) = answer else {
        anyhow::bail!("setup not answered with the call: {answer:?}");
    };
    callee
        .expect_body(|b| matches!(b, Body::PrivateCallSetup(_)).then_some(()))
        .await?;
    let accepted = callee
        .request(Request::PrivateCallAccept(pb::PrivateCallAccept {
            call_id: setup.call_id,
            group_id: 0,
        }))
        .await?;
    ensure!(matches!(accepted, Body::Ack(_)), "{accepted:?}");
    for client in [&mut *caller, &mut *callee] {
        client
            .expect_body(|b| match b {
                Body::JoinOk(j) if j.group.as_ref()?.group_id == setup.group_id => Some(()),
                _ => None,
            })
            .await?;
    }
    Ok(setup.group_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_call_on_one_relay_never_goes_to_the_others() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=103).group(10, 100..=103);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let mut callee = Client::connect(a.addr, &a.cert, 101).await?;
    // A call on B at the same time takes B's first slot: the same group id.
    let mut other_caller = Client::connect(b.addr, &b.cert, 102).await?;
    let mut other_callee = Client::connect(b.addr, &b.cert, 103).await?;
    let group = call(&mut caller, &mut callee).await?;
    let other_group = call(&mut other_caller, &mut other_callee).await?;
    ensure!(group == other_group, "{group} and {other_group}");

    let burst = granted(&caller.press(group).await?).context("the caller's press")?;
    let granted_on_b = other_caller.press(other_group).await?;
    ensure!(
        granted(&granted_on_b).is_some(),
        "B's call shares no floor with A's: {granted_on_b:?}"
    );
    for sequence in 0..10 {
        caller.send_datagram(opus::datagram(group, burst, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut heard = 0;
    while callee
        .recv_voice(Duration::from_millis(500))
        .await
        .is_some()
    {
        heard += 1;
    }
    ensure!(heard == 10, "the callee heard {heard} of 10 frames");
    ensure!(
        other_callee
            .recv_voice(Duration::from_millis(300))
            .await
            .is_none(),
        "B's call heard A's"
    );
    ensure!(
        a.metrics.cluster_voice_out.get() == 0,
        "A published {} frames of a private call",
        a.metrics.cluster_voice_out.get()
    );
    drop((caller, callee, other_caller, other_callee));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}

/// Why `caller`'s call to `callee` is refused (its `PrivateCallReject`).
async fn refusal(caller: &mut Client, callee: u32) -> anyhow::Result<i32> {
    let answer = caller
        .request(Request::PrivateCallSetup(pb::PrivateCallSetup {
            callee_terminal_id: callee,
            ..Default::default()
        }))
        .await?;
    ensure!(matches!(answer, Body::PrivateCallSetup(_)), "{answer:?}");
    caller
        .expect_body(|b| match b {
            Body::PrivateCallReject(r) => Some(r.reason),
            _ => None,
        })
        .await
}

/// A call to a terminal logged in to another relay of the cluster is
/// refused as such (not as offline): a private call between relays is not
/// possible yet, and the caller is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_terminal_of_another_relay_is_refused_as_such() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(100..=102).group(10, 100..=102);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut caller = Client::connect(a.addr, &a.cert, 100).await?;
    let _callee = Client::connect(b.addr, &b.cert, 101).await?;
    // A knows 101 is on B once B has announced its terminals.
    presence::until(a, "/api/v1/terminals", Duration::from_secs(5), |answer| {
        Ok(presence::entry(answer, "terminals", 101)?["relay"] == "relay-b")
    })
    .await?;
    let reason = refusal(&mut caller, 101).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallRejectReason::OtherRelay),
        "the caller was told {reason}"
    );
    // Logged in nowhere: offline.
    let reason = refusal(&mut caller, 102).await?;
    ensure!(
        reason == i32::from(pb::PrivateCallRejectReason::Offline),
        "{reason}"
    );
    drop((caller, _callee));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}
