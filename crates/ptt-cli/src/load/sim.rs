//! The run of a load scenario: the listeners log in on the receive lanes,
//! the plan (who talks where, who plays out for real) is made from what the
//! relay told them, the talkers talk on their own thread, and the counts of
//! every thread are summed for the report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::lanes::{Lane, LaneStart, LoggedIn, TalkPlan, Talkers};
use super::relay;
use super::scenario::{Scenario, speech_packets};
use super::target::{ALL_CALL_GROUP, Target};
use super::tasks;
use super::totals::{Outcome, Totals};

/// Longest wait for the generator's threads to end after the run.
const THREADS_END: Duration = Duration::from_secs(5);

/// Runs the scenario against `target` with `terminals` simulated terminals:
/// the listeners log in on [`lanes`](super::lanes) (one thread each), the
/// plan is made from what the relay told them, the talkers log in again on
/// a thread of their own and talk until the scenario's end.
pub(crate) async fn run(
    target: &Target,
    terminals: usize,
    lanes: usize,
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
    let secrets: HashMap<u32, String> = counted.iter().cloned().collect();

    let lane_count = lanes.clamp(1, counted.len());
    let mut lanes = Vec::with_capacity(lane_count);
    for index in 0..lane_count {
        let share: Vec<(u32, String)> = counted
            .iter()
            .skip(index)
            .step_by(lane_count)
            .cloned()
            .collect();
        lanes.push(Lane::spawn(index, target.clone(), share)?);
    }
    let mut logged_in: Vec<LoggedIn> = Vec::with_capacity(counted.len());
    for lane in &mut lanes {
        logged_in.extend(lane.logged_in().await?);
    }
    // The relay joins each terminal to its groups right after log-in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let relay_rss_logged_in = scenario.relay_pid.and_then(relay::rss_kib);

    let plan = Plan::new(&logged_in, scenario)?;
    let (talking_tx, talking) = watch::channel(false);
    let (stop_tx, stop) = watch::channel(false);
    let mut parts: Vec<Arc<Totals>> = lanes.iter().map(|l| l.totals.clone()).collect();
    let (lane_done, mut finished): (Vec<_>, Vec<_>) = lanes
        .into_iter()
        .map(|lane| {
            lane.start(LaneStart {
                talkers: plan.talkers.clone(),
                probes: plan.probes.clone(),
                talking: talking.clone(),
                stop: stop.clone(),
            })
        })
        .unzip();
    let talk_plan = TalkPlan {
        groups: plan
            .groups
            .iter()
            .map(|(group, ids)| {
                let talkers = ids
                    .iter()
                    .filter_map(|id| secrets.get(id).map(|s| (*id, s.clone())))
                    .collect();
                (*group, talkers)
            })
            .collect(),
        late: late.to_vec(),
        members: plan.members.clone(),
        packets,
    };
    let mut talkers = Talkers::spawn(target.clone(), talk_plan, scenario, stop.clone())?;
    parts.push(talkers.totals.clone());
    (&mut talkers.talking)
        .await
        .context("the talker thread ended during log-in")??;

    let ticks = relay::clock_ticks();
    let cpu = || {
        scenario
            .relay_pid
            .and_then(|pid| relay::cpu_seconds(pid, ticks))
    };
    let cpu_before = cpu();
    let own_cpu = || relay::cpu_seconds(std::process::id(), ticks);
    let own_cpu_before = own_cpu();
    talking_tx.send_replace(true);
    let start = Instant::now();
    let progress = scenario
        .progress
        .then(|| tokio::spawn(tasks::show_progress(start, parts.clone(), stop.clone())));
    let talker_cpu = (&mut talkers.done).await.ok().flatten();
    let cpu_talk_phase = cpu().zip(cpu_before).map(|(after, before)| after - before);
    let load_cpu = own_cpu()
        .zip(own_cpu_before)
        .map(|(after, before)| after - before);
    stop_tx.send_replace(true);
    let mut lane_cpu = Vec::with_capacity(lane_done.len());
    for done in lane_done {
        let cpu = done.await.ok().flatten();
        lane_cpu.push(cpu);
    }
    if let Some(task) = progress {
        let _ = task.await;
    }
    // Every thread gone and its sockets closed before the report, so runs
    // in one process (the fan-out bench) do not add up their sockets.
    finished.push(talkers.finished);
    let _ = tokio::time::timeout(THREADS_END, async {
        for thread in finished {
            let _ = thread.await;
        }
    })
    .await;
    Ok(Outcome {
        totals: Arc::new(Totals::merged(&parts)),
        listeners: logged_in.len(),
        late_terminals: late.len(),
        groups: plan.members.len(),
        talk_groups: plan.groups.len(),
        talkers: plan.talkers.len(),
        cpu_talk_phase,
        load_cpu,
        relay_rss_logged_in,
        talker_cpu,
        lane_cpu: lane_cpu.into_iter().collect(),
    })
}

/// Who talks where and who plays out for real, from the groups the relay
/// told each terminal at log-in.
struct Plan {
    /// Every group's members (with the all-call's audience under group 0).
    members: Arc<BTreeMap<u32, BTreeSet<u32>>>,
    /// Each talk group and its talkers, in turn order.
    groups: Vec<(u32, Vec<u32>)>,
    /// Every talker.
    talkers: HashSet<u32>,
    /// Per talk group, one listener that is neither a talker nor a
    /// dispatcher and plays the group's voice out for real.
    probes: HashMap<u32, u32>,
}

impl Plan {
    fn new(logged_in: &[LoggedIn], scenario: Scenario) -> anyhow::Result<Self> {
        let mut members: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let mut talk_rights: HashMap<u32, BTreeSet<u32>> = HashMap::new();
        for terminal in logged_in {
            for info in &terminal.groups {
                if info.joined {
                    members
                        .entry(info.group_id)
                        .or_default()
                        .insert(terminal.id);
                }
                if info.rights.as_ref().is_some_and(|r| r.talk) {
                    talk_rights
                        .entry(terminal.id)
                        .or_default()
                        .insert(info.group_id);
                }
            }
        }
        let mut talk_groups: Vec<u32> = members.keys().copied().filter(|&g| g != 1).collect();
        if talk_groups.is_empty() {
            talk_groups = members.keys().copied().collect();
        }
        let is_dispatcher = |t: &LoggedIn| {
            t.groups
                .iter()
                .any(|g| g.rights.as_ref().is_some_and(|r| r.dispatch))
        };
        // Talkers: terminals in the fewest groups, dispatchers last, each
        // talking in one group only.
        let mut candidates: Vec<&LoggedIn> = logged_in.iter().collect();
        candidates.sort_by_key(|t| (is_dispatcher(t), t.groups.len(), t.id));
        let mut chosen = HashSet::new();
        let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
        if scenario.all_call {
            // The audience of an all-call: every other terminal logged in (in
            // a generated directory, group 1 holds everyone and is the
            // all-call group).
            let dispatcher = candidates
                .iter()
                .find(|t| is_dispatcher(t))
                .context("--all-call needs a dispatcher among the terminals")?;
            members.insert(ALL_CALL_GROUP, logged_in.iter().map(|t| t.id).collect());
            chosen.insert(dispatcher.id);
            groups.push((ALL_CALL_GROUP, vec![dispatcher.id]));
            talk_groups.clear();
        }
        for &group in &talk_groups {
            let talkers: Vec<u32> = candidates
                .iter()
                .map(|t| t.id)
                .filter(|id| !chosen.contains(id))
                .filter(|id| talk_rights.get(id).is_some_and(|g| g.contains(&group)))
                .take(scenario.talkers_per_group.max(1))
                .collect();
            chosen.extend(talkers.iter().copied());
            if !talkers.is_empty() {
                groups.push((group, talkers));
            }
        }
        if groups.is_empty() {
            bail!("no terminal may talk in any group");
        }
        let mut probes: HashMap<u32, u32> = HashMap::new();
        // An all-call arrives under each all-call group's own id, which a
        // probe of group 0 would never match: no probes then.
        for (group, _) in groups.iter().filter(|(g, _)| *g != ALL_CALL_GROUP) {
            let probe = candidates.iter().map(|t| t.id).find(|id| {
                !chosen.contains(id)
                    && !probes.contains_key(id)
                    && members.get(group).is_some_and(|m| m.contains(id))
            });
            if let Some(probe) = probe {
                probes.insert(probe, *group);
            }
        }
        Ok(Self {
            members: Arc::new(members),
            groups,
            talkers: chosen,
            probes,
        })
    }
}
