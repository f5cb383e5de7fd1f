//! Regrouping against a real relay on loopback: a terminal put into a group
//! while online hears that group at once, and stops hearing it (and forgets
//! it) when taken out. The relay's administrator regroups here (admin API);
//! zone regrouping and backup calls send the same `Regrouped` messages.

use crate::common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::ensure;
use bytes::{BufMut, Bytes, BytesMut};
use common::{expect, secret};
use ptt_client::{Client, ClientConfig, Event, Events, Trust};
use ptt_directory::{HashParams, hash_secret};
use ptt_proto::pb;
use ptt_relay::config::Config;

const TOKEN: &str = "regroup-test-admin-token-0123";
const DISTRICT: u32 = 10;
/// 100 is a member from the start; 101 is regrouped in and out.
const SQUAD: u32 = 20;

fn directory_toml() -> String {
    let mut out = String::new();
    for id in [100, 101] {
        let hash = hash_secret(secret(id).as_bytes(), HashParams::LIGHT).expect("hash");
        let _ = write!(
            out,
            "[[terminal]]\nid = {id}\nname = \"T{id}\"\nrole = \"guard\"\norganisation = \"Test\"\n\
             secret-hash = \"{hash}\"\n\n"
        );
    }
    let _ = write!(
        out,
        "[[group]]\nid = {DISTRICT}\nname = \"District\"\nkind = \"district\"\n\
         members = [{{ terminal = 100 }}, {{ terminal = 101 }}]\n\n\
         [[group]]\nid = {SQUAD}\nname = \"Squad\"\nkind = \"other\"\n\
         members = [{{ terminal = 100 }}]\n\n"
    );
    out
}

/// A 20 ms SILK wideband Opus packet (TOC config 9, code 0).
fn opus_frame() -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(9 << 3);
    buf.resize(40, 0x5a);
    buf.freeze()
}

/// An admin API call that must succeed.
async fn admin(ops: SocketAddr, method: reqwest::Method, path: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .request(method, format!("http://{ops}{path}"))
        .bearer_auth(TOKEN)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    Ok(())
}

/// `talker` talks ten frames in `group`.
async fn talk(talker: &Client, group: u32) -> anyhow::Result<()> {
    let talk = talker.press(group, pb::Priority::Normal, pb::FloorKind::Normal);
    talk.granted().await?;
    for _ in 0..10 {
        talk.push_frame(opus_frame())?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let summary = talk.release().await;
    ensure!(summary.frames_sent >= 10, "{summary:?}");
    Ok(())
}

/// Counts `group`'s voice frames among the events of the next `quiet`.
async fn voice_in(events: &mut Events, group: u32, quiet: Duration) -> usize {
    let mut frames = 0;
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if matches!(event, Event::Voice(ref f) if f.group == group) {
            frames += 1;
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_regrouped_in_hears_the_group_and_out_forgets_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("directory.toml");
    std::fs::write(&path, directory_toml())?;
    let relay = ptt_relay::Relay::load(Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse()?,
        ops_listen: "127.0.0.1:0".parse()?,
        console_listen: "127.0.0.1:0".parse()?,
        directory: Some(path),
        admin_token: Some(TOKEN.parse()?),
        ..Config::default()
    })
    .await?;
    let (addr, ops) = (relay.local_addr(), relay.ops_addr());
    let cert = relay.cert_path().to_owned();
    let shutdown = relay.shutdown_token();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(relay.run());
    let connect = |id: u32| {
        Client::connect(ClientConfig::new(
            addr,
            Trust::Pinned(cert.clone()),
            id,
            secret(id),
        ))
    };
    let talker = connect(100).await?;
    let guard = connect(101).await?;
    let mut events = guard.events();
    assert!(!guard.groups().iter().any(|g| g.group_id == SQUAD));

    let member = format!("/api/v1/admin/groups/{SQUAD}/members/101");
    admin(ops, reqwest::Method::PUT, &member).await?;
    let added = expect(&mut events, |e| match e {
        Event::Regrouped(r) if r.group_id == SQUAD && r.terminal_id == 101 => Some(r.clone()),
        _ => None,
    })
    .await?;
    assert_eq!(added.change, i32::from(pb::RegroupChange::Added));
    // The client's state changed before the event was handed out.
    assert!(guard.joined().contains(&SQUAD), "{:?}", guard.joined());
    let squad = guard.groups().into_iter().find(|g| g.group_id == SQUAD);
    assert_eq!(
        squad.map(|g| (g.name, g.joined)),
        Some(("Squad".into(), true))
    );
    talk(&talker, SQUAD).await?;
    let heard = voice_in(&mut events, SQUAD, Duration::from_millis(500)).await;
    assert!(heard >= 10, "heard {heard} frames of the squad");

    admin(ops, reqwest::Method::DELETE, &member).await?;
    let removed = expect(&mut events, |e| match e {
        Event::Regrouped(r) if r.group_id == SQUAD && r.terminal_id == 101 => Some(r.change),
        _ => None,
    })
    .await?;
    assert_eq!(removed, i32::from(pb::RegroupChange::Removed));
    assert!(!guard.joined().contains(&SQUAD));
    assert!(!guard.groups().iter().any(|g| g.group_id == SQUAD));
    talk(&talker, SQUAD).await?;
    let heard = voice_in(&mut events, SQUAD, Duration::from_millis(500)).await;
    assert_eq!(heard, 0, "still hears the squad after leaving it");
    Ok(())
}
