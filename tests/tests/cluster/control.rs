//! The control rooms of a cluster: a dispatcher logged in to one relay sees
//! what happens on the others — a guard's position and an emergency
//! declared by a guard of another relay, in a group another relay decides.

use anyhow::ensure;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::geo::location;
use ptt_tests::nats::NatsServer;

use crate::in_process;
use ptt_tests::{Client, TestDirectory};

const DISPATCHER: u32 = 1;
const GUARD: u32 = 2;
const GROUP: u32 = 11;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_on_one_relay_sees_the_positions_and_emergencies_of_another()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new()
        .dispatcher(DISPATCHER)
        .group_with(1, "control-room", [DISPATCHER], &[])
        .guards(2..=4)
        .group(GROUP, 2..=4);
    let relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let (a, b) = (&relays[0], &relays[1]);
    let mut dispatcher = Client::connect(b.addr, &b.cert, DISPATCHER).await?;
    let mut guard = Client::connect(a.addr, &a.cert, GUARD).await?;
    // Relay A announces the guard's position to every control room.
    let answer = guard.request(location(100.0, 50.0)).await?;
    ensure!(matches!(answer, Body::Ack(_)), "{answer:?}");
    let position = dispatcher
        .expect_body(|body| match body {
            Body::LocationReport(report) if report.terminal_id == GUARD => Some(*report),
            _ => None,
        })
        .await?;
    ensure!(position.latitude_deg != 0.0, "{position:?}");
    // The guard's emergency, decided by A (which takes the group's floor).
    let state = guard
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: GROUP,
            text: "break-in at the east gate".to_owned(),
        }))
        .await?;
    ensure!(
        matches!(state, Body::EmergencyState(ref s) if s.active),
        "{state:?}"
    );
    let seen = dispatcher
        .expect_body(|body| match body {
            Body::EmergencyState(state) if state.group_id == GROUP => Some(state.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        seen.active && seen.declared_by == GUARD && seen.text == "break-in at the east gate",
        "the dispatcher on B saw {seen:?}"
    );
    for relay in relays {
        relay.stop().await?;
    }
    Ok(())
}
