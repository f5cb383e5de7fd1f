//! Zone logic: membership that follows location.
//!
//! Terminals report their positions on the control stream. The relay keeps the last fix
//! of each, and two things follow from them:
//! - **relay patrol** ([`patrol`]): a patrol group follows its lead terminal; the on-duty
//!   guards of each compound whose premises the lead comes near join the group, and leave
//!   when it moves on;
//! - **backup calls** ([`backup`]): an emergency pulls the on-duty guards of every premises
//!   within the backup radius of the caller into the caller's group until it is cleared.
//!
//! Both change the [`Roster`](crate::roster::Roster)'s dynamic grants. Each change (a
//! [`RegroupRecord`]) is logged, the affected terminal's session is woken to join or leave
//! (and tells its terminal with `Regrouped`), and the control room and the group's other
//! listeners are told too. All of it runs on the control path: a location report costs one distance
//! per premises zone (microseconds for a district), and nothing here touches the voice
//! path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use dashmap::DashMap;
use ptt_proto::pb::{self, server_message::Body};

use crate::group::Groups;
use crate::link;
use crate::log_sink::LogSink;
use crate::online::Online;
use crate::roster::{DynamicGrant, Roster};
use ptt_calllog::{Record, RegroupReason, RegroupRecord, now_ms};
use ptt_directory::{Directory, GeoPoint, GroupId, PatrolRule, Role, TerminalId, ZoneId};

pub mod backup;
pub mod patrol;
pub mod remote;
pub mod share;

use patrol::{PatrolTracker, Premises};
use share::RegroupShare;

/// A terminal's last reported position.
#[derive(Debug, Clone)]
pub struct Fix {
    /// Where.
    pub at: GeoPoint,
    /// The report as received (terminal id set by the relay), to forward.
    pub report: pb::LocationReport,
    /// When the relay received it (Unix ms).
    pub received_at_ms: i64,
}

/// Zone logic's state: last fixes, the premises index, each patrol's tracker.
#[derive(Debug)]
pub struct Dispatch {
    locations: DashMap<u32, Fix>,
    premises: Vec<Premises>,
    /// Patrol groups by lead terminal.
    patrols_led: HashMap<TerminalId, Vec<(GroupId, PatrolRule)>>,
    trackers: Mutex<HashMap<GroupId, PatrolTracker>>,
    /// How far from an emergency caller premises are pulled into its call.
    backup_radius_m: f64,
    directory: Arc<Directory>,
    /// Where the grants zone logic makes are kept.
    roster: Arc<Roster>,
    /// To wake the session of a terminal regrouped.
    online: Arc<Online>,
    /// To tell a group's listeners and the control room.
    groups: Arc<Groups>,
    log: LogSink,
    /// The other relays, once the relay is in a cluster.
    share: OnceLock<Arc<dyn RegroupShare>>,
}

impl Dispatch {
    /// Indexes the directory's premises zones (of enterprise groups) and patrol rules.
    /// Zone logic changes memberships in `roster`, wakes the sessions of `online`
    /// terminals concerned, tells the listeners of `groups` and logs each change to `log`.
    pub fn new(
        directory: Arc<Directory>,
        backup_radius_m: f64,
        roster: Arc<Roster>,
        online: Arc<Online>,
        groups: Arc<Groups>,
        log: LogSink,
    ) -> Self {
        let mut patrols_led: HashMap<TerminalId, Vec<(GroupId, PatrolRule)>> = HashMap::new();
        for group in directory.groups() {
            if let Some(rule) = group.patrol {
                patrols_led
                    .entry(rule.lead)
                    .or_default()
                    .push((group.id, rule));
            }
        }
        Self {
            locations: DashMap::new(),
            premises: patrol::premises_of(&directory),
            patrols_led,
            trackers: Mutex::new(HashMap::new()),
            backup_radius_m,
            directory,
            roster,
            online,
            groups,
            log,
            share: OnceLock::new(),
        }
    }

    /// Shares every later zone logic change with `share` too (set once,
    /// when the relay has joined its cluster).
    pub fn share_regroups_with(&self, share: Arc<dyn RegroupShare>) {
        let _ = self.share.set(share);
    }

    /// The last position `terminal` reported, if any.
    pub fn location(&self, terminal: u32) -> Option<Fix> {
        self.locations.get(&terminal).map(|fix| fix.clone())
    }

    /// Every terminal's last position, by terminal id.
    pub fn locations(&self) -> Vec<(u32, Fix)> {
        let mut out: Vec<_> = self
            .locations
            .iter()
            .map(|entry| (*entry.key(), entry.value().clone()))
            .collect();
        out.sort_unstable_by_key(|(terminal, _)| *terminal);
        out
    }

    /// The premises zones the patrol `group` has picked up now.
    pub fn patrol_near(&self, group: GroupId) -> Vec<ZoneId> {
        lock(&self.trackers)
            .get(&group)
            .map(|tracker| tracker.near().iter().copied().collect())
            .unwrap_or_default()
    }

    /// The radius of backup calls, metres.
    pub fn backup_radius_m(&self) -> f64 {
        self.backup_radius_m
    }

    /// The enterprise group of a premises zone.
    fn site_group(&self, zone: ZoneId) -> Option<GroupId> {
        self.premises
            .iter()
            .find(|premises| premises.zone == zone)
            .map(|premises| premises.group)
    }
}

/// Takes a terminal's position report: remembers it, forwards it to the control room if
/// `forward` (the session's rate limit) and, if the terminal leads patrols, moves their
/// membership. The report was checked ([`GeoPoint::new`]) by the caller.
pub fn report_location(
    dispatch: &Dispatch,
    terminal: u32,
    at: GeoPoint,
    report: pb::LocationReport,
    forward: bool,
) {
    let fix = Fix {
        at,
        report,
        received_at_ms: now_ms(),
    };
    dispatch.locations.insert(terminal, fix);
    if forward {
        dispatch
            .groups
            .notify_control_room(0, &link::frame(0, Body::LocationReport(report)));
    }
    let Some(patrols) = dispatch.patrols_led.get(&TerminalId(terminal)) else {
        return;
    };
    let mut changes = Vec::new();
    for (group, rule) in patrols {
        let step =
            lock(&dispatch.trackers)
                .entry(*group)
                .or_default()
                .step(&dispatch.premises, rule, at);
        for zone in step.left {
            changes.extend(release(dispatch, *group, |grant| {
                grant.reason == RegroupReason::ZoneEntered && grant.zone == zone
            }));
        }
        for zone in step.entered {
            let grant = DynamicGrant {
                reason: RegroupReason::ZoneEntered,
                zone,
            };
            changes.extend(pull_in(dispatch, *group, zone, grant, TerminalId(terminal)));
        }
    }
    publish(dispatch, &changes);
}

/// The lead of patrols went offline: its patrols let go of the guards they picked up (a
/// patrol whose position is unknown passes no compound), and start afresh at its next
/// report.
pub fn lead_offline(dispatch: &Dispatch, terminal: u32) {
    let Some(patrols) = dispatch.patrols_led.get(&TerminalId(terminal)) else {
        return;
    };
    let mut changes = Vec::new();
    for (group, _) in patrols {
        lock(&dispatch.trackers).remove(group);
        changes.extend(release(dispatch, *group, |grant| {
            grant.reason == RegroupReason::ZoneEntered
        }));
    }
    publish(dispatch, &changes);
}

/// Adds the on-duty guards of the premises `zone` to `group` (except `except`), as
/// `grant`; the changes made.
fn pull_in(
    dispatch: &Dispatch,
    group: GroupId,
    zone: ZoneId,
    grant: DynamicGrant,
    except: TerminalId,
) -> Vec<RegroupRecord> {
    let Some(site_group) = dispatch.site_group(zone) else {
        return Vec::new();
    };
    let directory = dispatch.roster.directory();
    dispatch
        .roster
        .members(site_group)
        .into_iter()
        .filter(|member| member.terminal != except)
        // Only the compound's own guards, not members zone logic brought in.
        .filter(|member| {
            dispatch
                .roster
                .dynamic_grant(member.terminal, site_group)
                .is_none()
        })
        .filter(|member| {
            directory
                .terminal(member.terminal)
                .is_some_and(|t| t.role == Role::Guard && t.on_duty)
        })
        .filter(|member| dispatch.roster.add_dynamic(group, member.terminal, grant))
        .map(|member| RegroupRecord {
            group,
            terminal: member.terminal,
            added: true,
            reason: grant.reason,
            zone,
            at_ms: now_ms(),
        })
        .collect()
}

/// Takes back the grants of `group` that `which` selects; the changes made.
fn release(
    dispatch: &Dispatch,
    group: GroupId,
    which: impl Fn(&DynamicGrant) -> bool,
) -> Vec<RegroupRecord> {
    dispatch
        .roster
        .dynamic_members(group)
        .into_iter()
        .filter(|(_, grant)| which(grant))
        .filter_map(|(terminal, _)| {
            dispatch
                .roster
                .remove_dynamic(group, terminal)
                .map(|g| (terminal, g))
        })
        .map(|(terminal, grant)| RegroupRecord {
            group,
            terminal,
            added: false,
            reason: grant.reason.ending(),
            zone: grant.zone,
            at_ms: now_ms(),
        })
        .collect()
}

/// Logs each change, wakes the session of each terminal concerned (it joins or leaves and
/// tells its terminal), and tells the group's other listeners and the control room; in a
/// cluster, the other relays apply the changes too.
pub fn publish(dispatch: &Dispatch, changes: &[RegroupRecord]) {
    for change in changes {
        tracing::info!(
            group = change.group.0,
            terminal = change.terminal.0,
            added = change.added,
            reason = change.reason.as_str(),
            zone = change.zone.0,
            "regrouped"
        );
        dispatch.log.log(Record::Regroup(change.clone()));
        let frame = follow(dispatch, change);
        dispatch.groups.notify_control_room(change.group.0, &frame);
    }
    if let Some(share) = dispatch.share.get()
        && !changes.is_empty()
    {
        share.share(changes);
    }
}

/// What a change means on this relay: the session of the terminal concerned is woken
/// (it joins or leaves and tells its terminal), and the group's other listeners are
/// told. Returns the `Regrouped` frame they got. (The change is logged by the relay that
/// made it; a cluster hands its record to every relay's call log.)
pub(super) fn follow(dispatch: &Dispatch, change: &RegroupRecord) -> bytes::Bytes {
    if let Some(link) = dispatch.online.get(change.terminal.0) {
        link.membership_changed.notify_one();
    }
    let frame = link::frame(0, Body::Regrouped(regrouped(dispatch, change)));
    // The terminal itself is told by its session, with the group's details.
    if let Some(group) = dispatch.groups.get(change.group.0) {
        for link in group.listeners().iter() {
            if link.terminal != change.terminal.0 {
                link.send_frame(frame.clone());
            }
        }
    }
    frame
}

/// The `Regrouped` message of a change, as its watchers see it.
fn regrouped(dispatch: &Dispatch, change: &RegroupRecord) -> pb::Regrouped {
    pb::Regrouped {
        group_id: change.group.0,
        terminal_id: change.terminal.0,
        change: if change.added {
            pb::RegroupChange::Added
        } else {
            pb::RegroupChange::Removed
        }
        .into(),
        reason: wire_reason(change.reason).into(),
        group: None,
        zone: zone_name(dispatch, change.zone),
    }
}

/// The protocol's name for a regroup reason.
pub fn wire_reason(reason: RegroupReason) -> pb::RegroupReason {
    match reason {
        RegroupReason::ZoneEntered => pb::RegroupReason::ZoneEntered,
        RegroupReason::ZoneLeft => pb::RegroupReason::ZoneLeft,
        RegroupReason::Backup => pb::RegroupReason::EmergencyBackup,
        RegroupReason::BackupCleared => pb::RegroupReason::EmergencyCleared,
    }
}

/// A zone's display name, empty if unknown.
pub fn zone_name(dispatch: &Dispatch, zone: ZoneId) -> String {
    dispatch
        .directory
        .zone(zone)
        .map(|zone| zone.name.clone())
        .unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
