//! What the dashboard shows, read from the relay's shared state: every
//! group's floor and the members zone logic added to it, the terminals
//! online, the terminals' own quality reports.
//!
//! Everything here is a read of atomics, a short walk over a concurrent
//! map or a short read lock of the roster's grants (which the voice path
//! never takes); nothing asks a group task or waits on one, so a wall screen
//! costs the voice path nothing. The types serialize to the JSON the page reads
//! (`assets/dashboard.js`), with short field names and no nesting the page
//! does not need: with 100 groups and 1,000 terminals a snapshot stays a
//! few tens of kilobytes.

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use super::history::{AlertView, BurstView, RegroupView};
use super::latency::{Headline, Point};
use crate::state::OpsState;
use ptt_directory::{Directory, GroupId, Role, TerminalId};

/// Most organisations listed by name; the rest are summed into one line, so
/// a directory of hundreds of small companies keeps the snapshot small.
pub(crate) const MAX_ORGANISATIONS: usize = 40;

/// One snapshot as the page receives it once a second (`snapshot` event).
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot<'a> {
    /// Unix milliseconds when it was taken.
    pub(crate) at_ms: i64,
    /// Every group, in directory order.
    pub(crate) groups: Vec<GroupView<'a>>,
    /// Terminals online.
    pub(crate) online: Online<'a>,
    /// The big latency figures.
    pub(crate) latency: Option<Headline>,
    /// The newest chart point (the page appends it to the history).
    pub(crate) point: Option<Point>,
    /// The terminals' own reports, relay-wide.
    pub(crate) clients: ClientView,
    /// Alerts of the last hour with their tallies, newest first.
    pub(crate) alerts: &'a [AlertView],
    /// Recent talk bursts, newest first.
    pub(crate) bursts: &'a [BurstView],
    /// Zone logic's last membership changes, last first.
    pub(crate) regroups: &'a [RegroupView],
    /// Private calls up now (ringing or connected).
    pub(crate) private_calls: usize,
    /// Microseconds the previous snapshot took to compute and serialize (the
    /// sampler's cost per second, shown in the page footer).
    pub(crate) sample_us: u64,
    /// This relay's id in its cluster; absent for a relay on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) relay: Option<&'a str>,
    /// In a cluster, every relay heard (this one first): its terminals and
    /// the floors it decides; empty for a relay on its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) relays: Vec<ClusterRelay>,
}

/// One relay of the cluster, as the header lists it.
#[derive(Debug, Serialize)]
pub(crate) struct ClusterRelay {
    /// Its id.
    pub(crate) relay: String,
    /// Terminals logged in to it.
    pub(crate) terminals: usize,
    /// Groups whose floors it decides.
    pub(crate) decides: Vec<u32>,
}

/// The relays of the cluster, this one first; empty alone.
pub(crate) fn relays(shared: &OpsState, groups: &[GroupView<'_>]) -> Vec<ClusterRelay> {
    let Some(cluster) = &shared.relay.cluster else {
        return Vec::new();
    };
    let here = ClusterRelay {
        relay: cluster.relay().to_owned(),
        terminals: shared.relay.online.len(),
        decides: groups
            .iter()
            .filter(|g| g.decided_here == Some(true))
            .map(|g| g.id)
            .collect(),
    };
    let others = cluster
        .elsewhere
        .relays()
        .into_iter()
        .map(|other| ClusterRelay {
            relay: other.relay,
            terminals: other.terminals,
            decides: other.decides,
        });
    std::iter::once(here).chain(others).collect()
}

/// A terminal as the page names it.
#[derive(Debug, Serialize)]
pub(crate) struct Who<'a> {
    /// Terminal id.
    pub(crate) id: u32,
    /// Display name (empty if the directory does not know it).
    pub(crate) name: &'a str,
}

/// One group's row.
#[derive(Debug, Serialize)]
pub(crate) struct GroupView<'a> {
    /// Group id.
    pub(crate) id: u32,
    /// Display name.
    pub(crate) name: &'a str,
    /// Members joined now (online listeners).
    pub(crate) members: usize,
    /// Who holds the floor.
    pub(crate) holder: Option<Who<'a>>,
    /// Requests waiting for the floor.
    pub(crate) queue: u32,
    /// Who declared the emergency the group is in.
    pub(crate) emergency: Option<Who<'a>>,
    /// Mean mouth-to-ear over the last minute, µs, as the listeners report.
    pub(crate) m2e_us: Option<u64>,
    /// Frames lost over the last minute, percent, as the listeners report.
    pub(crate) loss_pct: Option<f64>,
    /// In a cluster, whether this relay decides the group's floor now (holds
    /// its lease); absent for a relay on its own, which decides them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) decided_here: Option<bool>,
    /// Members zone logic added (a passing patrol's compound guards, an
    /// emergency's backup), by terminal id; left out when none, so a quiet
    /// district's snapshot does not grow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) dynamic: Vec<DynamicView<'a>>,
}

/// A member zone logic added to a group.
#[derive(Debug, Serialize)]
pub(crate) struct DynamicView<'a> {
    /// Terminal id.
    pub(crate) id: u32,
    /// Display name.
    pub(crate) name: &'a str,
    /// The premises zone that brought it in, by name.
    pub(crate) zone: &'a str,
    /// `zone-entered` or `backup`.
    pub(crate) reason: &'static str,
}

/// Terminals online against the directory, by role and organisation.
#[derive(Debug, Serialize)]
pub(crate) struct Online<'a> {
    /// Online now.
    pub(crate) total: u32,
    /// Terminals in the directory.
    pub(crate) of: u32,
    /// Per role, in a fixed order.
    pub(crate) roles: Vec<Count<'a>>,
    /// Per organisation, most online first, at most [`MAX_ORGANISATIONS`]
    /// plus one line summing the rest.
    pub(crate) organisations: Vec<Count<'a>>,
}

/// Online of total for one role or organisation.
#[derive(Debug, Serialize)]
pub(crate) struct Count<'a> {
    /// Role or organisation name.
    pub(crate) name: &'a str,
    /// Online now.
    pub(crate) online: u32,
    /// In the directory.
    pub(crate) total: u32,
}

/// The terminals' quality reports summed over every group (last minute).
#[derive(Debug, Default, Serialize)]
pub(crate) struct ClientView {
    /// Reports received.
    pub(crate) reports: u64,
    /// Mean mouth-to-ear, weighted by frames received, µs.
    pub(crate) m2e_us: Option<u64>,
    /// Mean jitter, weighted by frames received, µs.
    pub(crate) jitter_us: Option<u64>,
    /// Frames lost, percent.
    pub(crate) loss_pct: Option<f64>,
}

const ROLES: [(Role, &str); 6] = [
    (Role::Dispatcher, "dispatcher"),
    (Role::Police, "police"),
    (Role::Patrol, "patrol"),
    (Role::Guard, "guard"),
    (Role::Volunteer, "volunteer"),
    (Role::Other, "other"),
];

/// Who is who, indexed once from the (immutable) directory so counting the
/// terminals online is one map lookup per session.
#[derive(Debug)]
pub(crate) struct Census {
    /// Terminal id → (organisation index, role index).
    index: HashMap<u32, (usize, usize)>,
    organisations: Vec<String>,
    organisation_totals: Vec<u32>,
    role_totals: [u32; ROLES.len()],
}

impl Census {
    /// Indexes `directory`.
    pub(crate) fn new(directory: &Directory) -> Self {
        let mut organisations: Vec<String> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        let mut organisation_totals = Vec::new();
        let mut role_totals = [0u32; ROLES.len()];
        let mut index = HashMap::new();
        for terminal in directory.terminals() {
            let org = *by_name
                .entry(terminal.organisation.as_str())
                .or_insert_with(|| {
                    organisations.push(terminal.organisation.clone());
                    organisation_totals.push(0);
                    organisations.len() - 1
                });
            let role = role_index(terminal.role);
            organisation_totals[org] += 1;
            role_totals[role] += 1;
            index.insert(terminal.id.0, (org, role));
        }
        Self {
            index,
            organisations,
            organisation_totals,
            role_totals,
        }
    }

    /// Counts the authenticated sessions of `shared`.
    pub(crate) fn online(&self, shared: &OpsState) -> Online<'_> {
        let mut orgs = vec![0u32; self.organisations.len()];
        let mut roles = [0u32; ROLES.len()];
        let mut total = 0;
        for terminal in shared.relay.online.terminals() {
            total += 1;
            if let Some(&(org, role)) = self.index.get(&terminal) {
                orgs[org] += 1;
                roles[role] += 1;
            }
        }
        let roles = ROLES
            .iter()
            .zip(roles)
            .zip(self.role_totals)
            .filter(|(_, total)| *total > 0)
            .map(|(((_, name), online), total)| Count {
                name,
                online,
                total,
            })
            .collect();
        let mut organisations: Vec<Count<'_>> = self
            .organisations
            .iter()
            .zip(orgs)
            .zip(&self.organisation_totals)
            .map(|((name, online), &total)| Count {
                name,
                online,
                total,
            })
            .collect();
        organisations.sort_by(|a, b| b.online.cmp(&a.online).then(a.name.cmp(b.name)));
        if organisations.len() > MAX_ORGANISATIONS {
            let rest = organisations.split_off(MAX_ORGANISATIONS - 1);
            organisations.push(Count {
                name: "others",
                online: rest.iter().map(|c| c.online).sum(),
                total: rest.iter().map(|c| c.total).sum(),
            });
        }
        Online {
            total,
            of: u32::try_from(self.index.len()).unwrap_or(u32::MAX),
            roles,
            organisations,
        }
    }
}

fn role_index(role: Role) -> usize {
    ROLES.iter().position(|(r, _)| *r == role).unwrap_or(0)
}

/// Every group's floor as the group tasks last published it, with the
/// listeners' reported quality.
pub(crate) fn groups<'a>(shared: &'a OpsState, now: Instant) -> (Vec<GroupView<'a>>, ClientView) {
    let directory = &shared.relay.directory;
    let who = |id: u32| Who {
        id,
        name: directory
            .terminal(TerminalId(id))
            .map_or("", |t| t.name.as_str()),
    };
    let quality: HashMap<u32, _> = shared
        .relay
        .metrics
        .client_quality
        .all(now)
        .into_iter()
        .collect();
    let clustered = shared.relay.cluster.is_some();
    let groups = directory
        .groups()
        .iter()
        .filter_map(|g| shared.relay.group(g.id.0))
        .map(|group| {
            let figures = quality.get(&group.id);
            let dynamic = shared
                .relay
                .roster
                .dynamic_members(GroupId(group.id))
                .into_iter()
                .map(|(terminal, grant)| DynamicView {
                    id: terminal.0,
                    name: who(terminal.0).name,
                    zone: directory.zone(grant.zone).map_or("", |z| z.name.as_str()),
                    reason: grant.reason.as_str(),
                })
                .collect();
            GroupView {
                id: group.id,
                name: &group.name,
                members: group.listeners().len(),
                holder: group.holder().map(|(holder, _)| who(holder)),
                queue: group.queue_len(),
                emergency: group.emergency_declarer().map(who),
                m2e_us: figures.and_then(|f| f.mouth_to_ear).map(micros),
                loss_pct: figures.and_then(|f| f.loss_ratio).map(percent),
                decided_here: clustered.then(|| group.decides_here()),
                dynamic,
            }
        })
        .collect();
    (groups, clients(quality.values()))
}

/// The relay-wide figures: each group's means weighted by its frames.
fn clients<'a>(
    groups: impl Iterator<Item = &'a ptt_relay_core::metrics::quality::GroupFigures>,
) -> ClientView {
    let mut view = ClientView::default();
    let (mut m2e, mut jitter, mut weight_m2e, mut weight_jitter) = (0f64, 0f64, 0f64, 0f64);
    let (mut received, mut lost) = (0u64, 0u64);
    for g in groups {
        view.reports += g.reports;
        received += g.frames_received;
        lost += g.frames_lost;
        let weight = g.frames_received.max(1) as f64;
        if let Some(d) = g.mouth_to_ear {
            m2e += d.as_secs_f64() * weight;
            weight_m2e += weight;
        }
        if let Some(d) = g.jitter {
            jitter += d.as_secs_f64() * weight;
            weight_jitter += weight;
        }
    }
    let mean = |sum: f64, weight: f64| (weight > 0.0).then(|| (sum / weight * 1e6).round() as u64);
    view.m2e_us = mean(m2e, weight_m2e);
    view.jitter_us = mean(jitter, weight_jitter);
    view.loss_pct = (received + lost > 0).then(|| percent(lost as f64 / (received + lost) as f64));
    view
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A ratio as a percentage rounded to a tenth.
fn percent(ratio: f64) -> f64 {
    (ratio * 1000.0).round() / 10.0
}
