//! Floor control at 20 % loss both ways: terminals press and release over
//! and over; every request is answered within a bound, and the relay's
//! burst log never shows two holders at once.

use std::time::{Duration, Instant};

use ptt_client::{Client, Event, FloorOutcome};
use ptt_proto::pb;
use ptt_tests::TestRelay;
use ptt_tests::lossy::{Impairment, LossyProxy, seed_or};

use crate::{GROUP, directory, next_event, terminal};

/// Longest wait for the relay's answer to a floor request. QUIC retransmits
/// a lost request or answer after one probe timeout (milliseconds on
/// loopback, growing on repeated loss), so even three losses in a row of
/// the same packet fit easily.
const ANSWER_BOUND: Duration = Duration::from_secs(5);
/// Longest wait of a queued request for its grant: at most three holders
/// before it, each holding ≤ 150 ms plus its release's round trips.
const QUEUE_BOUND: Duration = Duration::from_secs(15);
/// Presses per terminal.
const ROUNDS: u32 = 6;

/// What one terminal saw.
#[derive(Debug, Default)]
struct Tally {
    terminal: u32,
    answers: Vec<Duration>,
    bursts: Vec<u32>,
    queued: u32,
    denied: u32,
}

/// Presses `ROUNDS` times, holding the floor briefly whenever granted.
async fn press_and_release(client: Client) -> anyhow::Result<Tally> {
    let terminal = client.terminal_id();
    let mut events = client.events();
    let mut tally = Tally {
        terminal,
        ..Tally::default()
    };
    for round in 0..ROUNDS {
        let asked = Instant::now();
        let outcome = tokio::time::timeout(
            ANSWER_BOUND,
            client.request_floor(GROUP, pb::Priority::Normal, pb::FloorKind::Normal),
        )
        .await
        .map_err(|_| anyhow::anyhow!("{terminal}: no answer within {ANSWER_BOUND:?}"))??;
        tally.answers.push(asked.elapsed());
        let burst = match outcome {
            FloorOutcome::Granted { burst, .. } => Some(burst),
            FloorOutcome::Queued { .. } => {
                tally.queued += 1;
                next_event(&mut events, QUEUE_BOUND, |e| match e {
                    Event::FloorGranted { group, burst, .. } if group == GROUP => Some(Some(burst)),
                    Event::FloorDenied { group, .. } if group == GROUP => Some(None),
                    _ => None,
                })
                .await
                .flatten()
            }
            FloorOutcome::Denied { .. } => {
                tally.denied += 1;
                None
            }
        };
        if let Some(burst) = burst {
            tally.bursts.push(burst);
            let hold = 30 + 40 * u64::from((terminal + round) % 4);
            tokio::time::sleep(Duration::from_millis(hold)).await;
        }
        // Gives the floor back, or withdraws a request still queued.
        tokio::time::timeout(ANSWER_BOUND, client.release(GROUP))
            .await
            .map_err(|_| anyhow::anyhow!("{terminal}: release unanswered"))??;
        tokio::time::sleep(Duration::from_millis(10 * u64::from(terminal % 3))).await;
    }
    Ok(tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_control_stays_correct_at_20_percent_loss() -> anyhow::Result<()> {
    let _shared = crate::LATENCY_BAR.read().await;
    let seed = seed_or(20);
    let relay = TestRelay::start(&directory(100..104)).await?;
    let proxy = LossyProxy::start(relay.addr, seed).await?;
    let mut clients = Vec::new();
    for id in 100..104 {
        clients.push(terminal(&relay, proxy.addr(), id).await?);
    }
    // Jitter of up to 10 ms also reorders the packets of each connection.
    proxy.set_both(Impairment::loss(0.2).with_jitter(Duration::from_millis(10)));

    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(press_and_release(c)))
        .collect();
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(tokio::time::timeout(Duration::from_secs(120), task).await???);
    }
    let took = started.elapsed();
    let stats = proxy.stats();
    let answers: Vec<Duration> = tallies.iter().flat_map(|t| t.answers.clone()).collect();
    let slowest = answers.iter().max().copied().unwrap_or_default();
    let mean = answers.iter().sum::<Duration>() / answers.len().max(1) as u32;
    eprintln!(
        "seed {seed}: {} requests in {took:?}; answer mean {mean:?}, max {slowest:?}",
        answers.len()
    );
    for t in &tallies {
        eprintln!(
            "  terminal {}: {} bursts, {} queued, {} denied",
            t.terminal,
            t.bursts.len(),
            t.queued,
            t.denied
        );
    }
    eprintln!("  proxy: {stats:?}");
    assert_eq!(answers.len(), 4 * ROUNDS as usize, "every request answered");
    assert!(
        stats.to_relay.lost > 0 && stats.to_client.lost > 0,
        "loss really happened: {stats:?}"
    );

    // The relay's own record: each burst of the group ends before the next
    // starts.
    let data = relay.stop().await?;
    let db = rusqlite::Connection::open(data.path().join("pttd.sqlite"))?;
    let bursts: Vec<(u32, u32, i64, i64, String)> = db
        .prepare(
            "SELECT talker, burst_id, started_at_ms, ended_at_ms, outcome FROM bursts \
             WHERE group_id = ?1 ORDER BY started_at_ms, id",
        )?
        .query_map([GROUP], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    for pair in bursts.windows(2) {
        assert!(
            pair[1].2 >= pair[0].3,
            "two holders at once: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    let mut granted: Vec<u32> = tallies.iter().flat_map(|t| t.bursts.clone()).collect();
    granted.sort_unstable();
    let before = granted.len();
    granted.dedup();
    assert_eq!(granted.len(), before, "a burst id granted twice");
    let logged: Vec<u32> = bursts.iter().map(|b| b.1).collect();
    for burst in &granted {
        assert!(
            logged.contains(burst),
            "burst {burst} granted but not logged"
        );
    }
    eprintln!(
        "  relay logged {} bursts, terminals saw {} grants; outcomes {:?}",
        bursts.len(),
        granted.len(),
        bursts.iter().map(|b| b.4.as_str()).collect::<Vec<_>>()
    );
    assert!(granted.len() >= 8, "the floor changed hands often enough");
    Ok(())
}
