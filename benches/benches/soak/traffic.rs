//! The churn the soak runs until its end: terminals logging out and in
//! again, talkers taking turns in several kinds of group (one lane of them
//! pressing two at once so the second queues), a dispatcher's roll calls
//! and all-calls, and patrol leads riding their routes so compounds' guards
//! join and leave the patrol groups. Every loop ends at `end`.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ptt_cli::cli::track::file::Track;
use ptt_client::Client;
use ptt_proto::pb;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use super::fleet::{Counts, FPS, Fleet, Press};

/// Console 1: roll calls.
const DISPATCHER: u32 = 1;
/// Console 2: all-calls to group 3 (District Alerts).
const ALL_CALLER: u32 = 2;
/// Group 3, District Alerts: every terminal listens, dispatchers talk.
const DISTRICT_ALERTS: u32 = 3;
/// Police officers of the four squads (groups 11–14).
const POLICE: RangeInclusive<u32> = 101..=112;
/// The three trunk-road patrols' terminals; 201, 203 and 205 lead groups
/// 31, 32 and 33.
const PATROLS: RangeInclusive<u32> = 201..=206;
/// The leads and the route each rides.
const LEADS: [(u32, &str); 3] = [
    (201, "trunk-road-1.csv"),
    (203, "trunk-road-2.csv"),
    (205, "trunk-road-3.csv"),
];
/// Every guard of the 32 compounds (groups 101–132).
const GUARDS: RangeInclusive<u32> = 301..=380;
/// The compounds' groups.
const COMPOUNDS: RangeInclusive<u32> = 101..=132;

/// The 100 terminals of the demo district the soak logs in: two consoles,
/// twelve officers, six patrol terminals and 80 guards.
pub(crate) fn terminals() -> Vec<u32> {
    [DISPATCHER, ALL_CALLER]
        .into_iter()
        .chain(POLICE)
        .chain(PATROLS)
        .chain(GUARDS)
        .collect()
}

/// The terminals that log out and in again: all but the consoles and the
/// patrol leads.
fn churnable() -> Vec<u32> {
    terminals()
        .into_iter()
        .filter(|id| ![DISPATCHER, ALL_CALLER].contains(id) && !LEADS.iter().any(|l| l.0 == *id))
        .collect()
}

/// The seconds between `now` and `end`, never negative.
fn until(end: Instant) -> Duration {
    end.saturating_duration_since(Instant::now())
}

/// Every `every`, `per_round` online terminals log out; each logs in again
/// 1–10 s later (by `end` at the latest). Returns once all are back.
pub(crate) async fn churn(
    fleet: Arc<Fleet>,
    every: Duration,
    per_round: usize,
    end: Instant,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = churnable();
    let mut away = JoinSet::new();
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        for _ in 0..per_round {
            let Some((id, _)) = fleet.pick(&ids, &mut rng, |_| true) else {
                break;
            };
            let Some(client) = fleet.take(id) else {
                continue;
            };
            let back = Instant::now() + Duration::from_secs_f64(rng.random_range(1.0..10.0));
            let fleet = fleet.clone();
            away.spawn(async move {
                fleet.close(client).await;
                sleep_until(back.min(end)).await;
                // One retry: a login refused under load is not a leak.
                if !fleet.login(id).await {
                    sleep(Duration::from_secs(1)).await;
                    fleet.login(id).await;
                }
            });
        }
        while away.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while away.join_next().await.is_some() {}
    })
    .await;
}

/// A lane of talkers taking turns: one burst at a time, 1–5 s each.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    pub(crate) name: &'static str,
    talkers: Vec<u32>,
    groups: RangeInclusive<u32>,
    /// A second member presses 100 ms after the first and queues.
    contention: bool,
}

/// The lanes: squads, compounds (two lanes), patrols, and compounds with
/// two pressing at once.
pub(crate) fn lanes() -> Vec<Lane> {
    let lane = |name, talkers: RangeInclusive<u32>, groups, contention| Lane {
        name,
        talkers: talkers.collect(),
        groups,
        contention,
    };
    vec![
        lane("squads", POLICE, 11..=14, false),
        lane("compounds", GUARDS, COMPOUNDS, false),
        lane("compounds", GUARDS, COMPOUNDS, false),
        lane("patrols", PATROLS, 31..=33, false),
        lane("compounds, two press", GUARDS, COMPOUNDS, true),
    ]
}

/// Runs one lane until `end`.
pub(crate) async fn talk_lane(
    fleet: Arc<Fleet>,
    lane: Lane,
    speech: Arc<Vec<Bytes>>,
    end: Instant,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let in_lane = |client: &Client| client.joined().iter().any(|g| lane.groups.contains(g));
    while Instant::now() < end {
        let Some((id, client)) = fleet.pick(&lane.talkers, &mut rng, in_lane) else {
            sleep(Duration::from_secs(1).min(until(end))).await;
            continue;
        };
        let groups: Vec<u32> = client
            .joined()
            .into_iter()
            .filter(|g| lane.groups.contains(g))
            .collect();
        let Some(&group) = groups.choose(&mut rng) else {
            continue;
        };
        let seconds = rng.random_range(1.0..=5.0);
        let offset = rng.random_range(0..speech.len());
        let first = fleet.talk(&client, Press::normal(group, seconds), &speech, offset);
        let second = lane
            .contention
            .then(|| {
                fleet.pick(&lane.talkers, &mut rng, |c| {
                    c.terminal_id() != id && c.joined().contains(&group)
                })
            })
            .flatten();
        match second {
            Some((_, other)) => {
                // Talks on after the first for 1–2 s: its press waits in the
                // queue, is granted at the first's release, and sends the
                // buffered audio first.
                let longer = seconds + rng.random_range(1.0..=2.0);
                let second = async {
                    sleep(Duration::from_millis(100)).await;
                    fleet
                        .talk(&other, Press::normal(group, longer), &speech, offset)
                        .await;
                };
                tokio::join!(first, second);
            }
            None => first.await,
        }
        sleep(Duration::from_secs_f64(rng.random_range(0.5..=2.5)).min(until(end))).await;
    }
}

/// Every `every`: a roll call (alternately the whole district and four
/// compounds' groups) that up to eight of its targets answer RESPONDING;
/// every fourth time also a 2 s all-call to District Alerts.
pub(crate) async fn dispatch(
    fleet: Arc<Fleet>,
    every: Duration,
    speech: Arc<Vec<Bytes>>,
    end: Instant,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = &fleet.counts;
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    let mut round = 0u32;
    loop {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        round += 1;
        let Some(dispatcher) = fleet.client(DISPATCHER) else {
            continue;
        };
        let targets: Vec<u32> = if round % 2 == 1 {
            Vec::new() // every all-call group: the district
        } else {
            let first = COMPOUNDS.start() + 4 * ((round / 2) % 8);
            (first..first + 4).collect()
        };
        let text = format!("Soak roll call {round}: report status");
        match tokio::time::timeout(
            Duration::from_secs(15),
            dispatcher.send_alert(text, targets.clone(), true),
        )
        .await
        {
            Ok(Ok(tally)) => {
                Counts::add(&c.alerts, 1);
                respond(&fleet, tally.alert_id, &targets, &mut rng).await;
            }
            _ => {
                Counts::add(&c.alert_failures, 1);
            }
        }
        if round.is_multiple_of(4)
            && let Some(caller) = fleet.client(ALL_CALLER)
        {
            let press = Press {
                group: DISTRICT_ALERTS,
                priority: pb::Priority::Dispatcher,
                kind: pb::FloorKind::Broadcast,
                frames: 2 * FPS as usize,
            };
            fleet.talk(&caller, press, &speech, 0).await;
            Counts::add(&c.all_calls, 1);
        }
    }
}

/// Up to eight online targets of an alert answer RESPONDING with the
/// district's first status code.
async fn respond(fleet: &Fleet, alert: u64, targets: &[u32], rng: &mut StdRng) {
    let candidates: Vec<u32> = terminals()
        .into_iter()
        .filter(|id| ![DISPATCHER, ALL_CALLER].contains(id))
        .collect();
    let targeted =
        |c: &Client| targets.is_empty() || c.joined().iter().any(|g| targets.contains(g));
    let mut answered = Vec::new();
    for _ in 0..8 {
        let Some((id, client)) = fleet.pick(&candidates, rng, |c| {
            targeted(c) && !answered.contains(&c.terminal_id())
        }) else {
            break;
        };
        answered.push(id);
        let code = client.status_codes().first().map(|s| s.code);
        let ack = client.ack_alert(alert, pb::AlertAckKind::Responding, code);
        let counter = match tokio::time::timeout(Duration::from_secs(10), ack).await {
            Ok(Ok(())) => &fleet.counts.acks,
            _ => &fleet.counts.ack_failures,
        };
        Counts::add(counter, 1);
    }
}

/// The patrol leads' tracks, from `docs/tracks/`.
pub(crate) fn tracks() -> anyhow::Result<Vec<(u32, Track)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/tracks");
    LEADS
        .iter()
        .map(|(lead, file)| Ok((*lead, Track::load(&dir.join(file))?)))
        .collect()
}

/// The lead rides its route `speed` times faster than real time, round and
/// round, reporting its position every second until `end`.
pub(crate) async fn patrol(fleet: Arc<Fleet>, lead: u32, track: Track, speed: f64, end: Instant) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let duration = track.duration().max(1.0);
    loop {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        let Some(client) = fleet.client(lead) else {
            continue;
        };
        let fix = track.at((started.elapsed().as_secs_f64() * speed) % duration);
        let report = pb::LocationReport {
            latitude_deg: fix.lat,
            longitude_deg: fix.lon,
            accuracy_m: 5.0,
            heading_deg: fix.heading_deg,
            speed_mps: fix.speed_mps,
            timestamp_us: unix_us(),
            ..Default::default()
        };
        let sent = tokio::time::timeout(Duration::from_secs(10), client.send_location(report));
        let counter = match sent.await {
            Ok(Ok(())) => &fleet.counts.locations,
            _ => &fleet.counts.location_failures,
        };
        Counts::add(counter, 1);
    }
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// How many of the fleet's terminals are online, for the log.
pub(crate) fn online(fleet: &Fleet) -> String {
    format!(
        "{} of {} online, {} logins",
        fleet.online_count(),
        terminals().len(),
        Counts::get(&fleet.counts.logins)
    )
}
