//! Membership changes through the admin API over real HTTP: an online
//! terminal added to a group hears it at once and one removed stops, the
//! change outlives a restart; a talker that loses the right to talk loses the
//! floor (or its place in the queue) at once; and a roll call counts the
//! members as the admin left them.

use crate::admin_port;

use std::time::Duration;

use admin_port::{DISPATCHER, GROUP, OUTSIDER, TOKEN, admin, call, start};
use ptt_calllog::CallLogReader;
use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};
use ptt_tests::client::granted;
use ptt_tests::{Client, opus};
use reqwest::StatusCode;
use serde_json::json;

/// Every voice frame a client hears until `quiet` passes without one.
async fn heard(client: &Client, quiet: Duration) -> usize {
    let mut frames = 0;
    while client.recv_voice(quiet).await.is_some() {
        frames += 1;
    }
    frames
}

/// `talker` takes the floor of `group`, sends `frames` frames and releases.
async fn talk(talker: &mut Client, group: u32, frames: u16) -> anyhow::Result<()> {
    let burst = granted(&talker.press(group).await?).expect("granted");
    for seq in 0..frames {
        talker.send_datagram(opus::datagram(group, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    talker.release(group).await?;
    Ok(())
}

fn regrouped(body: &Body) -> Option<(u32, i32, i32)> {
    match body {
        Body::Regrouped(r) => Some((r.group_id, r.change, r.reason)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_make_an_online_terminal_hear_a_group_or_stop() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut clients = relay.connect_all([11, OUTSIDER]).await;
    let [talker, outsider] = &mut clients[..] else {
        unreachable!()
    };
    assert!(outsider.hello.groups.iter().all(|g| g.group_id != GROUP));

    // Not a member: hears nothing of the group.
    talk(talker, GROUP, 10).await?;
    assert_eq!(heard(outsider, Duration::from_millis(300)).await, 0);

    // Added, listen-only: told, joined at once, hears the group's voice.
    let path = format!("/api/v1/admin/groups/{GROUP}/members/{OUTSIDER}");
    let (status, answer) = call(
        relay.ops,
        Method::PUT,
        &path,
        Some(TOKEN),
        Some(json!({"talk": false})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["member"], true);
    assert_eq!(answer["online"], true);
    assert_eq!(
        outsider.expect_body(regrouped).await?,
        (
            GROUP,
            i32::from(pb::RegroupChange::Added),
            i32::from(pb::RegroupReason::Admin)
        )
    );
    // The join has reached the group once the control room hears of it; a
    // floor request tells us the same from the terminal's side.
    let denied = outsider.press(GROUP).await?;
    assert!(
        matches!(&denied, Body::FloorDenied(d) if d.reason == i32::from(pb::FloorDenyReason::ListenOnly)),
        "a listen-only member asked for the floor: {denied:?}"
    );
    talk(talker, GROUP, 10).await?;
    assert_eq!(heard(outsider, Duration::from_millis(500)).await, 10);

    // Removed: told, and hears nothing any more.
    let (status, answer) = call(relay.ops, Method::DELETE, &path, Some(TOKEN), None).await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["member"], false);
    assert_eq!(
        outsider.expect_body(regrouped).await?,
        (
            GROUP,
            i32::from(pb::RegroupChange::Removed),
            i32::from(pb::RegroupReason::Admin)
        )
    );
    let refused = outsider
        .request(Request::JoinGroup(pb::JoinGroup { group_id: GROUP }))
        .await?;
    assert!(matches!(refused, Body::Error(_)), "{refused:?}");
    talk(talker, GROUP, 10).await?;
    assert_eq!(heard(outsider, Duration::from_millis(300)).await, 0);

    // Added again, with talk: the change outlives a restart and the terminal
    // logs in as a member.
    let (status, _) = call(relay.ops, Method::PUT, &path, Some(TOKEN), Some(json!({}))).await?;
    assert_eq!(status, StatusCode::OK);
    // The history lists the admin's changes beside zone logic's, newest
    // first, with who made them.
    let (status, history) = call(
        relay.ops,
        Method::GET,
        &format!("/api/v1/regroups?group={GROUP}"),
        Some(TOKEN),
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{history}");
    let changes: Vec<(bool, &str, &str)> = history["regroups"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["terminal"]["id"] == OUTSIDER)
        .map(|r| {
            (
                r["added"].as_bool().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
                r["by"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        changes.len() >= 2 && changes[0] == (true, "admin", "admin") && !changes[1].0,
        "newest first, the add after the removal: {history}"
    );
    for client in clients {
        client.close().await;
    }
    let data = relay.stop().await?;
    let relay = start(Some(&data)).await?;
    let mut outsider = Client::connect(relay.addr, &relay.cert, OUTSIDER).await?;
    let group = outsider
        .hello
        .groups
        .iter()
        .find(|g| g.group_id == GROUP)
        .expect("the added membership did not survive the restart");
    assert!(group.joined);
    assert!(group.rights.as_ref().is_some_and(|r| r.talk && r.listen));
    assert!(granted(&outsider.press(GROUP).await?).is_some());
    outsider.close().await;
    relay.stop().await?;
    Ok(())
}

/// Waits for `FloorIdle` of `group`; returns the burst it names.
fn floor_idle(group: u32) -> impl Fn(&Body) -> Option<u32> {
    move |body| match body {
        Body::FloorIdle(idle) if idle.group_id == group => Some(idle.burst_id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talker_demoted_to_listen_only_loses_the_floor_at_once() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut clients = relay.connect_all([DISPATCHER, 11, 12]).await;
    let [dispatcher, talker, listener] = &mut clients[..] else {
        unreachable!()
    };
    let path = format!("/api/v1/admin/groups/{GROUP}/members/11");

    // 11 talks; 12 hears it.
    let burst = granted(&talker.press(GROUP).await?).expect("granted");
    for seq in 0..5 {
        talker.send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(heard(listener, Duration::from_millis(300)).await, 5);
    assert_eq!(heard(dispatcher, Duration::from_millis(100)).await, 5);

    // Demoted to listen-only while talking: the floor is taken from it.
    let (status, answer) = call(
        relay.ops,
        Method::PUT,
        &path,
        Some(TOKEN),
        Some(json!({"talk": false, "by": "duty officer Li"})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["talk"], false);
    let revoked = talker
        .expect_body(|b| match b {
            Body::FloorRevoked(r) if r.group_id == GROUP => Some(*r),
            _ => None,
        })
        .await?;
    assert_eq!(revoked.burst_id, burst);
    assert_eq!(
        revoked.reason,
        i32::from(pb::FloorRevokeReason::Removed),
        "{revoked:?}"
    );
    assert_eq!(listener.expect_body(floor_idle(GROUP)).await?, burst);
    assert_eq!(dispatcher.expect_body(floor_idle(GROUP)).await?, burst);

    // What it still sends goes nowhere (past the tail grace that lets the
    // last frames before an end through).
    tokio::time::sleep(Duration::from_millis(
        ptt_relay_core::group::TAIL_GRACE_MS + 100,
    ))
    .await;
    for seq in 5..15 {
        talker.send_datagram(opus::datagram(GROUP, burst, seq, 0))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(heard(listener, Duration::from_millis(300)).await, 0);
    assert_eq!(heard(dispatcher, Duration::from_millis(50)).await, 0);
    let denied = talker.press(GROUP).await?;
    assert!(
        matches!(&denied, Body::FloorDenied(d) if d.reason == i32::from(pb::FloorDenyReason::ListenOnly)),
        "{denied:?}"
    );
    // It still hears the group, and the floor is free for the others.
    let burst = granted(&listener.press(GROUP).await?).expect("the floor was left taken");
    listener.send_datagram(opus::datagram(GROUP, burst, 0, 0))?;
    assert_eq!(heard(talker, Duration::from_millis(300)).await, 1);

    // Queued behind 12 and then demoted: its request goes, and is not
    // granted when 12 releases.
    call(relay.ops, Method::PUT, &path, Some(TOKEN), Some(json!({}))).await?;
    talker.expect_body(regrouped).await?;
    talker.expect_body(regrouped).await?;
    let queued = talker.press(GROUP).await?;
    assert!(matches!(queued, Body::FloorQueued(_)), "{queued:?}");
    call(
        relay.ops,
        Method::PUT,
        &path,
        Some(TOKEN),
        Some(json!({"talk": false})),
    )
    .await?;
    let denied = talker
        .expect_body(|b| match b {
            Body::FloorDenied(d) if d.group_id == GROUP => Some(d.reason),
            _ => None,
        })
        .await?;
    assert_eq!(denied, i32::from(pb::FloorDenyReason::ListenOnly));
    talker.clear();
    dispatcher.clear();
    listener.release(GROUP).await?;
    assert_eq!(dispatcher.expect_body(floor_idle(GROUP)).await?, burst);
    let granted_later = talker
        .expect_within(Duration::from_millis(500), |m| {
            matches!(&m.body, Some(Body::FloorGranted(_)))
        })
        .await;
    assert!(
        matches!(granted_later, Ok(None) | Err(_)),
        "a demoted member's queued request was granted: {granted_later:?}"
    );

    for client in clients {
        client.close().await;
    }
    let data = relay.stop().await?;
    let reader = CallLogReader::open(&data.path().join("pttd.sqlite"))?;
    let by: Vec<_> = reader
        .admin_actions()?
        .into_iter()
        .map(|row| row.record.by)
        .collect();
    assert_eq!(by, ["duty officer Li", "admin", "admin"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_calls_count_the_members_as_the_admin_left_them() -> anyhow::Result<()> {
    use reqwest::Method;
    let relay = start(None).await?;
    let mut dispatcher = Client::connect(relay.addr, &relay.cert, DISPATCHER).await?;
    // Offline members count too: a roll call asks everyone who should answer.
    let mut targets = async || -> anyhow::Result<u32> {
        let answer = dispatcher
            .request(Request::Alert(pb::Alert {
                text: "roll call".into(),
                target_group_ids: vec![GROUP],
                requires_ack: true,
                ..Default::default()
            }))
            .await?;
        match answer {
            Body::AlertTally(tally) => Ok(tally.targets),
            other => anyhow::bail!("{other:?}"),
        }
    };
    assert_eq!(targets().await?, 2, "11 and 12");
    admin(
        relay.ops,
        Method::PUT,
        &format!("/api/v1/admin/groups/{GROUP}/members/{OUTSIDER}"),
    )
    .await
    .expect_err("a PUT without a body is refused");
    let (status, _) = call(
        relay.ops,
        Method::PUT,
        &format!("/api/v1/admin/groups/{GROUP}/members/{OUTSIDER}"),
        Some(TOKEN),
        Some(json!({})),
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(targets().await?, 3, "the added member is asked");
    admin(
        relay.ops,
        Method::DELETE,
        &format!("/api/v1/admin/groups/{GROUP}/members/12"),
    )
    .await?;
    assert_eq!(targets().await?, 2, "the removed member is not");
    dispatcher.close().await;
    relay.stop().await?;
    Ok(())
}
