//! The tasks of a load run: talkers taking turns through the floor, late
//! entrants, and the progress line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_client::{Client, Event};
use ptt_proto::pb;
use tokio::sync::watch;

use super::target::{ALL_CALL_GROUP, Target, client_config};
use super::totals::{Totals, duration_us};

/// Length of one talk burst.
const BURST: Duration = Duration::from_secs(2);
/// Longest wait for a floor grant.
const GRANT_PATIENCE: Duration = Duration::from_secs(5);
/// Longest wait of a late entrant for its first voice frame.
const LATE_PATIENCE: Duration = Duration::from_secs(3);
/// Pause between late entries.
const LATE_INTERVAL: Duration = Duration::from_secs(1);

/// One group's talkers, one after another through the floor, until the
/// deadline.
#[allow(clippy::too_many_arguments)]
pub(super) async fn talk_in_turns(
    group: u32,
    talkers: Vec<Client>,
    members: Arc<BTreeMap<u32, BTreeSet<u32>>>,
    packets: Arc<Vec<Bytes>>,
    offset: usize,
    fps: u32,
    deadline: Instant,
    totals: Arc<Totals>,
) {
    let period = Duration::from_secs(1) / fps.max(1);
    let frames_per_burst = (u64::from(fps) * BURST.as_secs()).max(1);
    let mut next_packet = offset;
    // Bounded: every turn takes at least one frame period or a pause.
    for turn in 0usize.. {
        if Instant::now() >= deadline {
            break;
        }
        let talker = &talkers[turn % talkers.len()];
        let listeners = members.get(&group).map_or(0, |m| {
            m.len() - usize::from(m.contains(&talker.terminal_id()))
        }) as u64;
        let pressed = Instant::now();
        let talk = if group == ALL_CALL_GROUP {
            talker.press(group, pb::Priority::Dispatcher, pb::FloorKind::Broadcast)
        } else {
            talker.press(group, pb::Priority::Normal, pb::FloorKind::Normal)
        };
        match tokio::time::timeout(GRANT_PATIENCE, talk.granted()).await {
            Ok(Ok(_grant)) => {
                totals
                    .hists()
                    .access
                    .record_us(duration_us(pressed.elapsed()));
                totals.bursts.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                totals.floor_failures.fetch_add(1, Ordering::Relaxed);
                count_sent(&totals, &talk.release().await, listeners);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for _ in 0..frames_per_burst {
            tick.tick().await;
            if Instant::now() >= deadline {
                break;
            }
            let packet = packets[next_packet % packets.len()].clone();
            next_packet += 1;
            if talk.push_frame(packet).is_err() {
                break;
            }
            totals.frames_pushed.fetch_add(1, Ordering::Relaxed);
        }
        count_sent(&totals, &talk.release().await, listeners);
    }
}

/// Counts a finished burst's frames: sent by the talker, and expected at
/// each of the group's `listeners`.
fn count_sent(totals: &Totals, summary: &ptt_client::TalkSummary, listeners: u64) {
    totals
        .frames_sent
        .fetch_add(summary.frames_sent, Ordering::Relaxed);
    totals
        .frames_expected
        .fetch_add(summary.frames_sent * listeners, Ordering::Relaxed);
}

/// Logs the kept-back terminals in one at a time during the bursts and
/// times each until its first voice frame.
pub(super) async fn late_entries(
    target: Target,
    late: Vec<(u32, String)>,
    endpoint: quinn::Endpoint,
    deadline: Instant,
    totals: Arc<Totals>,
) {
    tokio::time::sleep(LATE_INTERVAL / 2).await;
    // Bounded by the deadline: one entry per interval at most.
    for i in 0usize.. {
        if Instant::now() + LATE_INTERVAL / 2 > deadline {
            break;
        }
        let (id, secret) = &late[i % late.len()];
        totals.late_entries.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let heard = async {
            let client = Client::connect_with_endpoint(
                client_config(&target, *id, secret),
                endpoint.clone(),
            )
            .await
            .ok()?;
            let mut events = client.events();
            loop {
                match events.recv().await? {
                    Event::Voice(frame) => break Some(frame.received_at),
                    _ => continue,
                }
            }
        };
        match tokio::time::timeout(LATE_PATIENCE, heard).await {
            Ok(Some(at)) => totals
                .hists()
                .late_entry
                .record_us(duration_us(at.saturating_duration_since(started))),
            _ => {
                totals.late_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let pause = LATE_INTERVAL.saturating_sub(started.elapsed());
        tokio::time::sleep(pause).await;
    }
}

/// Overwrites one status line on stderr once per second (a line each when
/// stderr is not a terminal), summing what each generator thread counted.
pub(super) async fn show_progress(
    start: Instant,
    parts: Vec<Arc<Totals>>,
    mut stop: watch::Receiver<bool>,
) {
    let overwrite = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let sum = |count: fn(&Totals) -> &std::sync::atomic::AtomicU64| {
            parts
                .iter()
                .map(|p| count(p).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        let p99 = parts
            .iter()
            .filter_map(|p| p.hists().one_way.p99_ms())
            .fold(None, |worst: Option<f64>, ms| {
                Some(worst.map_or(ms, |w| w.max(ms)))
            })
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.3} ms"));
        let line = format!(
            "{:>5.1} s  bursts {}  frames sent {}  received {}  one-way p99 (worst thread) {}",
            start.elapsed().as_secs_f64(),
            sum(|t| &t.bursts),
            sum(|t| &t.frames_pushed),
            sum(|t| &t.frames_received),
            p99
        );
        // Overwritten on a terminal; a line each into a file.
        if overwrite {
            eprint!("\r{line}   ");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }
    if overwrite {
        eprintln!();
    }
}
