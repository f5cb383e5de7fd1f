//! Durability: a relay killed with SIGKILL in the middle of traffic has on
//! disk every burst record whose release it acknowledged.
//!
//! The relay runs in a child process — this test binary re-executed with
//! only the ignored `relay_child` test selected — so it can be killed for
//! real without touching the test process.

use std::collections::HashMap;
use std::time::Duration;

use crate::child_relay::{self, ChildRelay};
use ptt_proto::pb::server_message::Body;
use ptt_tests::client::granted;
use ptt_tests::{Client, TestDirectory, TestRelay, opus};

const CHILD_ENV: &str = "PTT_CRASH_CHILD_DATA";

fn directory() -> TestDirectory {
    TestDirectory::new()
        .guards(100..104)
        .group(10, [100, 101])
        .group(11, [102, 103])
}

/// Not a test of its own: the relay process of the crash test.
#[test]
#[ignore = "run as a child process by kill_9_during_traffic_loses_no_acknowledged_burst"]
fn relay_child() {
    let Ok(data) = std::env::var(CHILD_ENV) else {
        return;
    };
    child_relay::serve(async move {
        // Kept for the child's life: the process is killed, never dropped.
        let data = Box::leak(Box::new(
            tempfile::TempDir::new_in(&data).expect("data dir"),
        ));
        let config = TestRelay::config(data, &directory());
        ptt_relay::Relay::load(config).await.expect("relay")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_traffic_loses_no_acknowledged_burst() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let mut child =
        ChildRelay::start(module_path!(), "relay_child", CHILD_ENV, scratch.path()).await?;
    let (addr, cert) = (child.addr, child.cert.clone());

    // Four talkers in two groups take turns until the relay dies; each
    // counts the bursts whose release the relay acknowledged.
    let mut talkers = tokio::task::JoinSet::new();
    for (terminal, group) in [(100, 10), (101, 10), (102, 11), (103, 11)] {
        let cert = cert.clone();
        talkers.spawn(async move {
            let mut acked = 0u32;
            let Ok(mut client) = Client::connect(addr, &cert, terminal).await else {
                return (terminal, acked);
            };
            for _ in 0..10_000 {
                let Ok(answer) = client.press(group).await else {
                    break;
                };
                let Some(burst) = granted(&answer) else {
                    // Queued: wait for the grant.
                    match client.expect_body(granted).await {
                        Ok(burst) => {
                            if !talk_and_release(&mut client, group, burst).await {
                                break;
                            }
                            acked += 1;
                        }
                        Err(_) => break,
                    }
                    continue;
                };
                if !talk_and_release(&mut client, group, burst).await {
                    break;
                }
                acked += 1;
            }
            (terminal, acked)
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill()?; // SIGKILL: no shutdown, no flush.

    let mut acked = HashMap::new();
    while let Some(result) = talkers.join_next().await {
        let (terminal, count) = result?;
        acked.insert(terminal, count);
    }
    let total: u32 = acked.values().sum();
    assert!(total > 0, "traffic ran before the kill: {acked:?}");
    eprintln!("releases acknowledged before the kill: {acked:?}");

    let db_path = std::fs::read_dir(scratch.path())?
        .find_map(|entry| {
            let path = entry.ok()?.path().join("pttd.sqlite");
            path.exists().then_some(path)
        })
        .expect("call log database");
    let db = rusqlite::Connection::open(db_path)?;
    for (terminal, count) in acked {
        let logged: i64 = db.query_row(
            "SELECT COUNT(*) FROM bursts WHERE talker = ?1 AND outcome = 'released'",
            [terminal],
            |row| row.get(0),
        )?;
        assert!(
            logged >= i64::from(count),
            "terminal {terminal}: {count} releases acknowledged, {logged} on disk"
        );
    }
    Ok(())
}

/// Sends three frames and releases; true if the release was acknowledged.
async fn talk_and_release(client: &mut Client, group: u32, burst: u32) -> bool {
    for seq in 0..3 {
        if client
            .send_datagram(opus::datagram(group, burst, seq, 0))
            .is_err()
        {
            return false;
        }
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(2), client.release(group)).await,
        Ok(Ok(Body::Ack(_)))
    )
}
