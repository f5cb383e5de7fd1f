//! Who is where, through any relay's ops API: the terminals logged in to
//! the other relays and the relay deciding each floor, as the relays
//! announce them every second; a relay that stopped announcing drops out.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_tests::client::granted;
use ptt_tests::nats::NatsServer;

use crate::in_process;
use ptt_tests::{Client, TestDirectory, TestRelay};
use serde_json::Value;

const GROUP: u32 = 11;

async fn json(relay: &TestRelay, path: &str) -> anyhow::Result<Value> {
    Ok(reqwest::get(format!("http://{}{path}", relay.ops))
        .await?
        .json()
        .await?)
}

/// The entry of `id` in the `key` list of a `/api/v1/…` answer.
pub(crate) fn entry(answer: &Value, key: &str, id: u32) -> anyhow::Result<Value> {
    answer[key]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["id"] == id))
        .cloned()
        .with_context(|| format!("no {id} in {key}"))
}

/// GETs `path` from `relay` until `done` accepts it (at most `within`).
pub(crate) async fn until(
    relay: &TestRelay,
    path: &str,
    within: Duration,
    done: impl Fn(&Value) -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let answer = json(relay, path).await?;
        if done(&answer)? {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < within,
            "{path} still not as expected: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_relay_says_who_is_on_which_relay_and_who_decides_each_floor() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=4).group(GROUP, 1..=4);
    let mut relays = in_process::relays(&nats, &directory, &["relay-a", "relay-b"]).await?;
    let b = relays.pop().context("b")?;
    let a = relays.pop().context("a")?;
    let mut on_a = Client::connect(a.addr, &a.cert, 1).await?;
    let _on_b = Client::connect(b.addr, &b.cert, 3).await?;
    ensure!(granted(&on_a.press(GROUP).await?).is_some(), "A's press");

    let within = Duration::from_secs(3);
    until(&b, "/api/v1/terminals", within, |answer| {
        let (one, three, four) = (
            entry(answer, "terminals", 1)?,
            entry(answer, "terminals", 3)?,
            entry(answer, "terminals", 4)?,
        );
        Ok(one["online"] == true
            && one["relay"] == "relay-a"
            && three["relay"] == "relay-b"
            && four["online"] == false)
    })
    .await?;
    until(&b, "/api/v1/groups", within, |answer| {
        let group = entry(answer, "groups", GROUP)?;
        Ok(group["decided_by"] == "relay-a" && group["decided_here"] == false)
    })
    .await?;

    // A stops announcing: B no longer counts its terminals as online.
    a.stop().await?;
    let gone = until(&b, "/api/v1/terminals", Duration::from_secs(6), |answer| {
        Ok(entry(answer, "terminals", 1)?["online"] == false)
    })
    .await?;
    eprintln!("relay A stopped: its terminal shown offline on B after {gone:?}");
    b.stop().await?;
    Ok(())
}
