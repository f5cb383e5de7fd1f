//! Backup calls: a terminal's emergency pulls the guards of the compounds around it into
//! the call, and the clear lets them go.
//!
//! The floor side of an emergency (pre-emption, the group marked in emergency, the
//! control room told) is the group task's; it calls [`declared`] and [`cleared`] as the
//! floor reports the change. The caller's last position decides who is near: the on-duty
//! guards of every premises zone within the backup radius (`backup-radius-m`) join the
//! caller's group, nearest compound first, and the control room gets the caller's position.
//! A caller with no position in the last ten minutes gets no backup from zone logic (the
//! control room still sees the emergency and can send help by hand).
//!
//! An emergency in a patrol group keeps the guards the patrol brought in (their grants
//! become the emergency's) until the clear; the clear lets go of everyone the emergency
//! held except the guards of premises the patrol is still passing.

use ptt_proto::pb::server_message::Body;

use super::{Dispatch, pull_in, release};
use crate::group::EmergencyWatch;
use crate::link;
use crate::roster::DynamicGrant;
use ptt_calllog::{RegroupReason, RegroupRecord};
use ptt_directory::{GroupId, TerminalId};

/// A position older than this is not used to pull in backup: the caller may be far from
/// where it last reported.
pub const MAX_FIX_AGE_MS: i64 = 10 * 60 * 1000;

impl EmergencyWatch for Dispatch {
    fn declared(&self, group: u32, caller: u32) {
        declared(self, group, caller);
    }

    fn cleared(&self, group: u32) {
        cleared(self, group);
    }
}

/// `caller` declared an emergency in `group`: pulls in the guards nearby.
pub fn declared(dispatch: &Dispatch, group: u32, caller: u32) {
    // Whoever a passing patrol brought into the group stays for the emergency,
    // even when the patrol moves on.
    regrant(dispatch, GroupId(group), |grant| {
        (grant.reason == RegroupReason::ZoneEntered).then_some(RegroupReason::Backup)
    });
    let fix = dispatch
        .location(caller)
        .filter(|fix| ptt_calllog::now_ms() - fix.received_at_ms <= MAX_FIX_AGE_MS);
    let Some(fix) = fix else {
        tracing::warn!(
            group,
            caller,
            "emergency from a terminal with no recent position: no backup pulled in"
        );
        return;
    };
    let frame = link::frame(0, Body::LocationReport(fix.report));
    dispatch.groups.notify_control_room(0, &frame);
    let mut near: Vec<(f64, _)> = dispatch
        .premises
        .iter()
        .map(|premises| (premises.shape.distance_m(fix.at), premises.zone))
        .filter(|(distance, _)| *distance <= dispatch.backup_radius_m)
        .collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut changes = Vec::new();
    for (_, zone) in near {
        let grant = DynamicGrant {
            reason: RegroupReason::Backup,
            zone,
        };
        changes.extend(pull_in(
            dispatch,
            GroupId(group),
            zone,
            grant,
            TerminalId(caller),
        ));
    }
    tracing::info!(group, caller, pulled_in = changes.len(), "backup call");
    super::publish(dispatch, &changes);
}

/// The emergency of `group` was cleared: the guards pulled in leave, except those of
/// premises a patrol group is still passing, which stay as the patrol's.
pub fn cleared(dispatch: &Dispatch, group: u32) {
    let near = dispatch.patrol_near(GroupId(group));
    regrant(dispatch, GroupId(group), |grant| {
        (grant.reason == RegroupReason::Backup && near.contains(&grant.zone))
            .then_some(RegroupReason::ZoneEntered)
    });
    let changes = release(dispatch, GroupId(group), |grant| {
        grant.reason == RegroupReason::Backup
    });
    super::publish(dispatch, &changes);
}

/// Gives the members zone logic added to `group` the reason `new` says (if it says
/// one), keeping their membership, and has the other relays of a cluster do the same
/// (their zone logic would otherwise take a patrol's guard out of an emergency when the
/// patrol moves on). Nobody is told: nothing changes for the terminals.
fn regrant(
    dispatch: &Dispatch,
    group: GroupId,
    new: impl Fn(&DynamicGrant) -> Option<RegroupReason>,
) {
    let mut changes = Vec::new();
    for (terminal, grant) in dispatch.roster.dynamic_members(group) {
        let Some(reason) = new(&grant) else {
            continue;
        };
        let grant = DynamicGrant { reason, ..grant };
        dispatch.roster.regrant(group, terminal, grant);
        changes.push(RegroupRecord {
            group,
            terminal,
            added: true,
            reason,
            zone: grant.zone,
            at_ms: ptt_calllog::now_ms(),
        });
    }
    if let Some(share) = dispatch.share.get()
        && !changes.is_empty()
    {
        share.share(&changes);
    }
}
