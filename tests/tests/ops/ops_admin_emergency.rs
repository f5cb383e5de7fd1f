//! Clearing an emergency through the admin API over real HTTP: every member
//! of the group is told, the declarer's emergency burst ends, and the call
//! log says the administrator cleared it.

use crate::admin_port;

use admin_port::{DISPATCHER, GROUP, admin, start};
use ptt_calllog::{ADMIN_TERMINAL, AdminAction, CallLogReader};
use ptt_directory::GroupId;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_clears_an_emergency_for_the_group() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut clients = relay.connect_all([DISPATCHER, 11, 12]).await;
    let answer = clients[1]
        .request(Request::EmergencyDeclare(pb::EmergencyDeclare {
            group_id: GROUP,
            text: "help".into(),
        }))
        .await?;
    assert!(
        matches!(&answer, Body::EmergencyState(s) if s.active),
        "{answer:?}"
    );
    for client in clients.iter_mut().filter(|c| c.terminal != 11) {
        client
            .expect_body(|b| match b {
                Body::EmergencyState(s) if s.active => Some(()),
                _ => None,
            })
            .await?;
    }

    let path = format!("/api/v1/admin/groups/{GROUP}/emergency/clear");
    let answer = admin(relay.ops, Method::POST, &path).await?;
    assert_eq!(answer, json!({"group": GROUP, "cleared": true}));
    for client in &mut clients {
        let state = client
            .expect_body(|b| match b {
                Body::EmergencyState(s) if !s.active => Some(s.clone()),
                _ => None,
            })
            .await?;
        assert_eq!((state.group_id, state.declared_by), (GROUP, 11));
        assert_eq!(state.cleared_by, 0, "no terminal cleared it");
    }
    // The declarer's emergency burst ended with the emergency.
    clients[1]
        .expect_body(|b| match b {
            Body::FloorRevoked(r) if r.group_id == GROUP => Some(()),
            _ => None,
        })
        .await?;
    // Nothing left to clear.
    let again = admin(relay.ops, Method::POST, &path).await?;
    assert_eq!(again, json!({"group": GROUP, "cleared": false}));
    for client in clients {
        client.close().await;
    }

    let data = relay.stop().await?;
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    let emergencies = reader.emergencies(Some(GroupId(GROUP)), 0, i64::MAX, 10)?;
    assert_eq!(emergencies.len(), 1);
    assert_eq!(
        emergencies[0].cleared.map(|(by, _)| by),
        Some(ADMIN_TERMINAL)
    );
    // Named after the operator who asked (the token's default name here).
    assert_eq!(emergencies[0].cleared_by_operator.as_deref(), Some("admin"));
    let actions: Vec<_> = reader
        .admin_actions()?
        .into_iter()
        .map(|row| row.record.action)
        .collect();
    assert_eq!(
        actions,
        [AdminAction::ClearEmergency {
            group: GroupId(GROUP)
        }]
    );
    Ok(())
}
