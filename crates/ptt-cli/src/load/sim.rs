//! The simulated terminals: log-in over shared QUIC endpoints, listeners
//! that account every frame, talkers that take turns through the real
//! floor, late entrants, and a progress line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN, signal};
use ptt_client::jitter::{JitterBuffer, JitterConfig};
use ptt_client::{Client, Event};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::probe::Probe;
use super::relay;
use super::stats::{Arrival, ListenerRx};
use super::target::{ALL_CALL_GROUP, Target, client_config};
use super::tasks;
use super::totals::{Outcome, Totals, duration_us};

/// Terminals per shared client endpoint (one UDP socket each).
const TERMINALS_PER_ENDPOINT: usize = 64;
/// Log-ins in flight at once.
const CONCURRENT_LOGINS: usize = 32;
/// Time left for frames in flight after the last burst.
const DRAIN: Duration = Duration::from_millis(500);
/// Seconds of speech encoded once and replayed by every talker.
const SPEECH_SECONDS: f32 = 4.0;

/// The scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) talkers_per_group: usize,
    pub(crate) duration: Duration,
    pub(crate) fps: u32,
    pub(crate) seed: u64,
    pub(crate) progress: bool,
    /// One dispatcher all-calls (group 0) in bursts; everyone else listens.
    pub(crate) all_call: bool,
    /// The relay's process, when it is ours: its CPU time is sampled
    /// around the talking phase.
    pub(crate) relay_pid: Option<u32>,
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Encodes [`SPEECH_SECONDS`] of the synthetic voice once: the Opus packets
/// every simulated talker replays (and the fan-out bench sends over raw UDP).
pub fn speech_packets(seed: u64) -> anyhow::Result<Arc<Vec<Bytes>>> {
    let pcm = signal::speech_like(SPEECH_SECONDS, seed);
    let mut encoder = Backend::default()
        .encoder(CodecConfig::default())
        .context("cannot create the Opus encoder")?;
    let mut packets = Vec::new();
    let mut out = [0u8; MAX_PACKET_LEN];
    for chunk in pcm.chunks_exact(FRAME_SAMPLES) {
        let len = encoder
            .encode(chunk, &mut out)
            .context("Opus encode failed")?;
        packets.push(Bytes::copy_from_slice(&out[..len]));
    }
    if packets.is_empty() {
        bail!("no speech encoded");
    }
    Ok(Arc::new(packets))
}

/// Logs every terminal in, a bounded number at a time.
async fn login_all(
    target: &Target,
    terminals: &[(u32, String)],
    endpoints: &[quinn::Endpoint],
) -> anyhow::Result<Vec<Client>> {
    let permits = Arc::new(Semaphore::new(CONCURRENT_LOGINS));
    let mut set = JoinSet::new();
    for (i, (id, secret)) in terminals.iter().enumerate() {
        let config = client_config(target, *id, secret);
        let endpoint = endpoints[i % endpoints.len()].clone();
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = Client::connect_with_endpoint(config, endpoint).await;
            (i, result)
        });
    }
    let mut clients: Vec<Option<Client>> = vec![None; terminals.len()];
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.context("log-in task failed")?;
        let client =
            result.with_context(|| format!("log-in of terminal {} failed", terminals[i].0))?;
        clients[i] = Some(client);
    }
    Ok(clients.into_iter().flatten().collect())
}

/// Runs the scenario against `target` with `terminals` simulated terminals.
pub(crate) async fn run(
    target: &Target,
    terminals: usize,
    scenario: Scenario,
) -> anyhow::Result<Outcome> {
    let all: Vec<(u32, String)> = target.secrets.iter().take(terminals).cloned().collect();
    if all.len() < 2 {
        bail!("need at least 2 terminals, the secrets have {}", all.len());
    }
    let late_count = if all.len() >= 10 {
        (all.len() / 10).min(4)
    } else {
        0
    };
    let (counted, late) = all.split_at(all.len() - late_count);
    let packets = speech_packets(scenario.seed)?;

    let endpoint_count = all.len().div_ceil(TERMINALS_PER_ENDPOINT).max(1);
    let mut endpoints = Vec::with_capacity(endpoint_count);
    for _ in 0..endpoint_count {
        endpoints.push(
            quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))
                .context("cannot bind a client UDP socket")?,
        );
    }

    let clients = login_all(target, counted, &endpoints).await?;
    // The relay joins each terminal to its groups right after log-in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let relay_rss_logged_in = scenario.relay_pid.and_then(relay::rss_kib);

    // Membership as the relay told each terminal.
    let mut members: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    let mut talk_rights: HashMap<u32, BTreeSet<u32>> = HashMap::new();
    for client in &clients {
        for info in client.groups() {
            if info.joined {
                members
                    .entry(info.group_id)
                    .or_default()
                    .insert(client.terminal_id());
            }
            if info.rights.as_ref().is_some_and(|r| r.talk) {
                talk_rights
                    .entry(client.terminal_id())
                    .or_default()
                    .insert(info.group_id);
            }
        }
    }
    let mut talk_groups: Vec<u32> = members.keys().copied().filter(|&g| g != 1).collect();
    if talk_groups.is_empty() {
        talk_groups = members.keys().copied().collect();
    }
    // Talkers: terminals in the fewest groups, dispatchers last, each
    // talking in one group only.
    let mut candidates: Vec<&Client> = clients.iter().collect();
    candidates.sort_by_key(|c| {
        let groups = c.groups();
        let dispatcher = groups
            .iter()
            .any(|g| g.rights.as_ref().is_some_and(|r| r.dispatch));
        (dispatcher, groups.len(), c.terminal_id())
    });
    let mut chosen = BTreeSet::new();
    let mut plan: Vec<(u32, Vec<Client>)> = Vec::new();
    if scenario.all_call {
        // The audience of an all-call: every other terminal logged in (in a
        // generated directory, group 1 holds everyone and is the all-call
        // group).
        let dispatcher = candidates
            .iter()
            .find(|c| {
                c.groups()
                    .iter()
                    .any(|g| g.rights.as_ref().is_some_and(|r| r.dispatch))
            })
            .context("--all-call needs a dispatcher among the terminals")?;
        members.insert(
            ALL_CALL_GROUP,
            clients.iter().map(Client::terminal_id).collect(),
        );
        chosen.insert(dispatcher.terminal_id());
        plan.push((ALL_CALL_GROUP, vec![(*dispatcher).clone()]));
        talk_groups.clear();
    }
    for &group in &talk_groups {
        let talkers: Vec<Client> = candidates
            .iter()
            .filter(|c| !chosen.contains(&c.terminal_id()))
            .filter(|c| {
                talk_rights
                    .get(&c.terminal_id())
                    .is_some_and(|g| g.contains(&group))
            })
            .take(scenario.talkers_per_group.max(1))
            .map(|c| (*c).clone())
            .collect();
        for t in &talkers {
            chosen.insert(t.terminal_id());
        }
        if !talkers.is_empty() {
            plan.push((group, talkers));
        }
    }
    if plan.is_empty() {
        bail!("no terminal may talk in any group");
    }
    // Probes: per talk group, one listener that is neither a talker nor a
    // dispatcher plays the group's voice out for real.
    let mut probes: HashMap<u32, u32> = HashMap::new();
    // An all-call arrives under each all-call group's own id, which a probe
    // of group 0 would never match: no probes then.
    for (group, _) in plan.iter().filter(|(g, _)| *g != ALL_CALL_GROUP) {
        let probe = candidates.iter().find(|c| {
            let id = c.terminal_id();
            !chosen.contains(&id)
                && !probes.contains_key(&id)
                && members.get(group).is_some_and(|m| m.contains(&id))
        });
        if let Some(probe) = probe {
            probes.insert(probe.terminal_id(), *group);
        }
    }
    let members = Arc::new(members);

    let totals = Arc::new(Totals::new());
    let (stop_tx, stop) = watch::channel(false);
    let mut listeners = JoinSet::new();
    for client in &clients {
        let probe = match probes.get(&client.terminal_id()) {
            Some(&group) => Some(Probe::new(group)?),
            None => None,
        };
        listeners.spawn(listen(client.clone(), totals.clone(), stop.clone(), probe));
    }

    let ticks = relay::clock_ticks();
    let cpu = || {
        scenario
            .relay_pid
            .and_then(|pid| relay::cpu_seconds(pid, ticks))
    };
    let cpu_before = cpu();
    let own_cpu = || relay::cpu_seconds(std::process::id(), ticks);
    let own_cpu_before = own_cpu();
    let start = Instant::now();
    let deadline = start + scenario.duration;
    let mut talkers = JoinSet::new();
    let talker_count = plan.iter().map(|(_, t)| t.len()).sum();
    let talk_group_count = plan.len();
    for (i, (group, group_talkers)) in plan.into_iter().enumerate() {
        talkers.spawn(tasks::talk_in_turns(
            group,
            group_talkers,
            members.clone(),
            packets.clone(),
            i * 37,
            scenario.fps,
            deadline,
            totals.clone(),
        ));
    }
    let late_task = (!late.is_empty()).then(|| {
        tokio::spawn(tasks::late_entries(
            target.clone(),
            late.to_vec(),
            endpoints[0].clone(),
            deadline,
            totals.clone(),
        ))
    });
    let progress = scenario
        .progress
        .then(|| tokio::spawn(tasks::show_progress(start, totals.clone(), stop.clone())));

    while let Some(done) = talkers.join_next().await {
        done.context("talker task failed")?;
    }
    if let Some(task) = late_task {
        let _ = task.await;
    }
    tokio::time::sleep(DRAIN).await;
    let cpu_talk_phase = cpu().zip(cpu_before).map(|(after, before)| after - before);
    let load_cpu = own_cpu()
        .zip(own_cpu_before)
        .map(|(after, before)| after - before);
    stop_tx.send_replace(true);
    while listeners.join_next().await.is_some() {}
    if let Some(task) = progress {
        let _ = task.await;
    }

    let groups = members.len();
    let listener_count = clients.len();
    drop(clients);
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    }
    Ok(Outcome {
        totals,
        listeners: listener_count,
        late_terminals: late.len(),
        groups,
        talk_groups: talk_group_count,
        talkers: talker_count,
        cpu_talk_phase,
        load_cpu,
        relay_rss_logged_in,
    })
}

/// One terminal's receive side: counts, classifies and times every frame.
async fn listen(
    client: Client,
    totals: Arc<Totals>,
    mut stop: watch::Receiver<bool>,
    mut probe: Option<Probe>,
) {
    let me = client.terminal_id();
    let mut events = client.events();
    let mut rx = ListenerRx::default();
    let mut jitter: HashMap<u32, JitterBuffer> = HashMap::new();
    let mut played = Vec::new();
    loop {
        let due = probe
            .as_ref()
            .and_then(Probe::next_due)
            .unwrap_or_else(Probe::idle);
        let event = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep_until(due.into()) => {
                if let Some(probe) = probe.as_mut() {
                    probe.play(Instant::now(), &mut played);
                    let mut hists = totals.hists();
                    for us in played.drain(..) {
                        hists.mouth_to_ear.record_us(us);
                    }
                }
                continue;
            }
            event = events.recv() => event,
        };
        let frame = match event {
            Some(Event::Voice(frame)) => frame,
            Some(Event::Lagged { missed }) => {
                totals.lagged.fetch_add(missed, Ordering::Relaxed);
                continue;
            }
            Some(_) => continue,
            None => break,
        };
        if frame.talker == me {
            continue;
        }
        let now = Instant::now();
        let received_us = unix_us().saturating_sub(duration_us(now - frame.received_at));
        match rx.arrive(frame.group, frame.burst, frame.sequence) {
            Arrival::Duplicate => {
                totals.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Arrival::Reordered => {
                totals.reordered.fetch_add(1, Ordering::Relaxed);
            }
            Arrival::InOrder => {}
        }
        totals.frames_received.fetch_add(1, Ordering::Relaxed);
        if let Some(probe) = probe.as_mut().filter(|p| p.group() == frame.group) {
            probe.arrive(&frame);
        }
        let one_way = received_us.saturating_sub(frame.sender_timestamp_us);
        // Mouth-to-ear approximation at every listener: one-way plus the
        // playout delay its jitter buffer applies to this burst.
        let jb = jitter
            .entry(frame.group)
            .or_insert_with(|| JitterBuffer::new(JitterConfig::default()));
        let _ = jb.push(
            frame.received_at,
            frame.sequence,
            frame.burst,
            frame.sender_timestamp_us,
            frame.payload.clone(),
        );
        let playout = jb.playout_delay().map(duration_us);
        while jb.pop(now).is_some() {}
        if frame.last {
            jb.end_burst();
        }
        let mut hists = totals.hists();
        hists.one_way.record_us(one_way);
        if let Some(delay) = playout {
            hists.mouth_to_ear_approx.record_us(one_way + delay);
        }
    }
    if let Some(probe) = probe {
        totals
            .decode_errors
            .fetch_add(probe.decode_errors, Ordering::Relaxed);
    }
}
