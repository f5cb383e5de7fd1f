//! Alerts with roll call across a cluster: a dispatcher's alert on relay A
//! reaches the target group's guards on A and on B once each; their answers,
//! taken on either relay, reach the sender's tally on A and the control
//! room's dispatcher on B.

use std::time::Duration;

use anyhow::{Context, ensure};
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::nats::NatsServer;
use ptt_tests::{Client, TestDirectory};

use crate::in_process;

const SENDER: u32 = 1;
const WATCHER: u32 = 2;
const GROUP: u32 = 10;

fn answer(alert_id: u64, kind: pb::AlertAckKind, status_code: Option<u32>) -> Request {
    Request::AlertAck(pb::AlertAck {
        alert_id,
        kind: kind.into(),
        status_code,
    })
}

/// The alert `id` a guard gets, or an error after a while.
async fn alert_of(guard: &mut Client, id: u64) -> anyhow::Result<pb::Alert> {
    guard
        .expect_body(|body| match body {
            Body::Alert(alert) if alert.alert_id == id => Some(alert.clone()),
            _ => None,
        })
        .await
}

/// Tallies of alert `id` until one names `terminal` with `kind`.
async fn tally_naming(
    client: &mut Client,
    id: u64,
    terminal: u32,
    kind: pb::AlertAckKind,
) -> anyhow::Result<pb::AlertTally> {
    client
        .expect_body(|body| match body {
            Body::AlertTally(tally)
                if tally.alert_id == id
                    && tally
                        .entries
                        .iter()
                        .any(|e| e.terminal_id == terminal && e.kind() == kind) =>
            {
                Some(tally.clone())
            }
            _ => None,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_every_relays_guards_and_every_answer_reaches_the_tally()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new()
        .dispatcher(SENDER)
        .dispatcher(WATCHER)
        .guards(100..=103)
        .group_with(5, "control-room", [SENDER, WATCHER], &[])
        .group(GROUP, std::iter::once(SENDER).chain(100..=103));
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut sender = Client::connect(a.addr, &a.cert, SENDER).await?;
    let mut watcher = Client::connect(b.addr, &b.cert, WATCHER).await?;
    let mut on_a = Client::connect(a.addr, &a.cert, 100).await?;
    let mut on_b = Client::connect(b.addr, &b.cert, 102).await?;
    let mut also_on_b = Client::connect(b.addr, &b.cert, 103).await?;

    let first = sender
        .request(Request::Alert(pb::Alert {
            text: "break-in at compound D: report in".into(),
            target_group_ids: vec![GROUP],
            requires_ack: true,
            ..Default::default()
        }))
        .await?;
    let Body::AlertTally(first) = first else {
        anyhow::bail!("not a tally: {first:?}");
    };
    ensure!(first.targets == 4, "{first:?}");
    let id = first.alert_id;

    for guard in [&mut on_a, &mut on_b, &mut also_on_b] {
        let heard = alert_of(guard, id)
            .await
            .with_context(|| format!("guard {} got no alert", guard.terminal))?;
        ensure!(heard.from_terminal_id == SENDER && heard.text.starts_with("break-in"));
        ensure!(
            guard
                .expect_within(Duration::from_millis(300), |m| matches!(
                    &m.body,
                    Some(Body::Alert(a)) if a.alert_id == id
                ))
                .await?
                .is_none(),
            "guard {} got the alert twice",
            guard.terminal
        );
    }

    // A guard on B answers: the sender on A and the watcher on B see it.
    let taken = on_b
        .request(answer(id, pb::AlertAckKind::Responding, Some(3)))
        .await?;
    ensure!(matches!(taken, Body::Ack(_)), "{taken:?}");
    let tally = tally_naming(&mut sender, id, 102, pb::AlertAckKind::Responding).await?;
    ensure!(tally.responding == 1, "{tally:?}");
    tally_naming(&mut watcher, id, 102, pb::AlertAckKind::Responding)
        .await
        .context("the control room on B")?;
    // A guard on A answers: the tally counts both.
    let taken = on_a
        .request(answer(id, pb::AlertAckKind::Unable, None))
        .await?;
    ensure!(matches!(taken, Body::Ack(_)), "{taken:?}");
    let tally = tally_naming(&mut sender, id, 100, pb::AlertAckKind::Unable).await?;
    ensure!(
        (tally.responding, tally.unable) == (1, 1),
        "the sender's tally: {tally:?}"
    );
    tally_naming(&mut watcher, id, 100, pb::AlertAckKind::Unable)
        .await
        .context("the control room on B")?;

    // An answer to an alert that was not addressed to the terminal is refused
    // on any relay.
    let refused = watcher
        .request(answer(id, pb::AlertAckKind::Responding, None))
        .await?;
    ensure!(
        matches!(&refused, Body::Error(e) if e.reason == i32::from(pb::ErrorReason::Forbidden)),
        "{refused:?}"
    );
    drop((sender, watcher, on_a, on_b, also_on_b));
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}
