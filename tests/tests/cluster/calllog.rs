//! The call log of a cluster: the floor's owner killed with SIGKILL after
//! it acknowledged bursts (its own terminal's and another relay's): every
//! acknowledged burst is in every surviving relay's call log, and the
//! bursts of every relay's call log (the dead relay's disk included) never
//! overlap in the group: there was never a moment with two holders.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use ptt_calllog::{BurstRow, CallLogReader};
use ptt_directory::{GroupId, TerminalId};
use ptt_proto::pb::server_message::Body;
use ptt_tests::client::{acked, granted};
use ptt_tests::nats::NatsServer;
use ptt_tests::{Client, TestDirectory, opus};

use crate::processes::start_relays;

const GROUP: u32 = 11;

/// Talks one short burst: press, a few frames, release; the release must
/// be acknowledged (the relay acknowledges it once its record is kept).
async fn talk(client: &mut Client, frames: u16) -> anyhow::Result<()> {
    let burst = granted(&client.press(GROUP).await?).context("not granted")?;
    for sequence in 0..frames {
        client.send_datagram(opus::datagram(GROUP, burst, sequence, 0))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let released = client.release(GROUP).await?;
    ensure!(matches!(released, Body::Ack(_)), "release: {released:?}");
    Ok(())
}

/// Presses until granted (the floor has no owner for a moment after its
/// owner died), then talks and releases.
async fn talk_once_granted(client: &mut Client, within: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    loop {
        let answer = client.press(GROUP).await?;
        if let Some(burst) = granted(&answer) {
            client.send_datagram(opus::datagram(GROUP, burst, 0, 0))?;
            let released = client.release(GROUP).await?;
            ensure!(matches!(released, Body::Ack(_)), "release: {released:?}");
            return Ok(());
        }
        ensure!(Instant::now() < until, "never granted: {answer:?}");
        if let Body::FloorQueued(_) = answer {
            ensure!(
                acked(&client.release(GROUP).await?),
                "withdrawing a queued press"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bursts(calllog: &Path) -> anyhow::Result<Vec<BurstRow>> {
    Ok(CallLogReader::open(calllog)?.bursts(Some(GroupId(GROUP)), 0, i64::MAX, 10_000)?)
}

/// Bursts per talker.
fn tally(rows: &[BurstRow]) -> BTreeMap<TerminalId, usize> {
    let mut tally = BTreeMap::new();
    for row in rows {
        *tally.entry(row.record.talker).or_default() += 1;
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owners_acknowledged_bursts_are_on_every_relay_and_none_overlap()
-> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=3).group(GROUP, 1..=3);
    let mut relays = start_relays(&nats, &directory, 3).await?;
    let (a, b, c) = (
        &relays.processes[0],
        &relays.processes[1],
        &relays.processes[2],
    );
    let mut on_a = Client::connect(a.addr, &a.cert, 1).await?;
    let mut on_b = Client::connect(b.addr, &b.cert, 2).await?;
    let mut on_c = Client::connect(c.addr, &c.cert, 3).await?;
    // A's terminal presses first: A owns the floor and decides (and logs)
    // every burst until it dies, B's terminal's too.
    for _ in 0..3 {
        talk(&mut on_a, 5).await.context("A's terminal")?;
        talk(&mut on_b, 5).await.context("B's terminal")?;
    }
    relays.processes[0].kill()?;
    drop(on_a);
    talk_once_granted(&mut on_c, Duration::from_secs(5))
        .await
        .context("C's terminal after the kill")?;
    talk(&mut on_b, 5)
        .await
        .context("B's terminal after the kill")?;

    let acknowledged = BTreeMap::from([(TerminalId(1), 3), (TerminalId(2), 4), (TerminalId(3), 1)]);
    for (index, relay) in [(1, "B"), (2, "C")] {
        let until = Instant::now() + Duration::from_secs(5);
        let rows = loop {
            let rows = bursts(&relays.calllog(index))?;
            if tally(&rows) == acknowledged || Instant::now() > until {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ensure!(
            tally(&rows) == acknowledged,
            "relay {relay}'s call log holds bursts {:?}, acknowledged {acknowledged:?}",
            tally(&rows)
        );
    }

    // Every relay's bursts, the dead one's disk included, one row each.
    let mut all = Vec::new();
    for index in 0..3 {
        all.extend(
            bursts(&relays.calllog(index))?
                .into_iter()
                .map(|row| row.record),
        );
    }
    all.sort_by_key(|burst| {
        (
            burst.started_at_ms,
            burst.ended_at_ms,
            burst.talker,
            burst.burst_id,
        )
    });
    all.dedup();
    ensure!(all.len() == 8, "{} distinct bursts: {all:?}", all.len());
    for pair in all.windows(2) {
        ensure!(
            pair[1].started_at_ms >= pair[0].ended_at_ms,
            "two holders at once: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    Ok(())
}

/// A relay that was down while another logged bursts stores them when it is
/// back (its durable consumer hands it what it missed), each once, and its
/// history API lists them with the relay that recorded them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_back_from_a_stop_stores_what_it_missed_once() -> anyhow::Result<()> {
    use crate::in_process;

    let nats = NatsServer::start().await?;
    let directory = TestDirectory::new().guards(1..=3).group(GROUP, 1..=3);
    let a = in_process::relay(&nats, &directory, "relay-a", |_| {}).await?;
    let b = in_process::relay(&nats, &directory, "relay-b", |_| {}).await?;
    let mut talker = Client::connect(a.addr, &a.cert, 1).await?;
    talk(&mut talker, 3).await?;
    let calllog_b = b.data.path().join("pttd.sqlite");
    let until = Instant::now() + Duration::from_secs(5);
    while bursts(&calllog_b)?.is_empty() {
        ensure!(Instant::now() < until, "B never stored A's first burst");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let data_b = b.stop().await?;
    for _ in 0..2 {
        talk(&mut talker, 3).await?;
    }
    let b = in_process::relay(&nats, &directory, "relay-b", |config| {
        config.data_dir = data_b.path().to_owned();
        config.directory = Some(data_b.path().join("directory.toml"));
    })
    .await?;
    let until = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let rows = bursts(&calllog_b)?;
        if rows.len() >= 3 || Instant::now() > until {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A moment more: nothing is stored twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows_again = bursts(&calllog_b)?;
    ensure!(
        rows.len() == 3 && rows_again.len() == 3,
        "B holds {} then {} of A's 3 bursts",
        rows.len(),
        rows_again.len()
    );
    // B's history API answers for the cluster: each burst names the relay
    // that decided and recorded it, whose port serves the recording.
    let listed: serde_json::Value = reqwest::get(format!("http://{}/api/v1/bursts", b.ops))
        .await?
        .json()
        .await?;
    let listed = listed["bursts"].as_array().context("bursts")?.clone();
    ensure!(
        listed.len() == 3
            && listed
                .iter()
                .all(|burst| burst["relay"] == "relay-a" && burst["recording"].is_null()),
        "B lists {listed:?}"
    );
    let id = &listed[0]["id"];
    let response = reqwest::get(format!("http://{}/api/v1/bursts/{id}/recording", b.ops)).await?;
    ensure!(response.status() == reqwest::StatusCode::NOT_FOUND);
    let said = response.text().await?;
    ensure!(said.contains("relay-a"), "B said {said}");
    let on_a: serde_json::Value = reqwest::get(format!("http://{}/api/v1/bursts", a.ops))
        .await?
        .json()
        .await?;
    ensure!(
        on_a["bursts"]
            .as_array()
            .is_some_and(|bursts| bursts.len() == 3 && bursts.iter().all(|b| b["relay"].is_null())),
        "A lists its own bursts as another relay's: {on_a}"
    );
    drop(talker);
    for relay in [a, b] {
        relay.stop().await?;
    }
    Ok(())
}
