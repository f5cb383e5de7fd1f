//! Backup calls: a terminal's emergency pulls the guards of the compounds around it into
//! the call, and the clear lets them go.
//!
//! The floor side of an emergency (pre-emption, the group marked in emergency, the
//! control room told) is the group task's; it calls [`declared`] and [`cleared`] as the
//! floor reports the change. The caller's last position decides who is near: the on-duty
//! guards of every premises zone within the backup radius (`backup-radius-m`) join the
//! caller's group, nearest compound first, and the control room gets the caller's position.
//! A caller that never reported a position gets no backup from zone logic (the control
//! room still sees the emergency and can send help by hand).

use ptt_proto::pb::server_message::Body;

use super::{pull_in, release};
use crate::calllog::RegroupReason;
use crate::directory::{GroupId, TerminalId};
use crate::link;
use crate::relay::Shared;
use crate::roster::DynamicGrant;

/// `caller` declared an emergency in `group`: pulls in the guards nearby.
pub fn declared(shared: &Shared, group: u32, caller: u32) {
    let dispatch = &shared.dispatch;
    let Some(fix) = dispatch.location(caller) else {
        tracing::warn!(
            group,
            caller,
            "emergency from a terminal with no known position: no backup pulled in"
        );
        return;
    };
    let frame = link::frame(0, Body::LocationReport(fix.report));
    shared.notify_control_room(0, &frame);
    let mut near: Vec<(f64, _)> = dispatch
        .sites
        .iter()
        .map(|site| (site.premises.shape.distance_m(fix.at), site.premises.zone))
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
            shared,
            GroupId(group),
            zone,
            grant,
            TerminalId(caller),
        ));
    }
    tracing::info!(group, caller, pulled_in = changes.len(), "backup call");
    super::publish(shared, &changes);
}

/// The emergency of `group` was cleared: the guards pulled in leave.
pub fn cleared(shared: &Shared, group: u32) {
    let changes = release(shared, GroupId(group), |grant| {
        grant.reason == RegroupReason::Backup
    });
    super::publish(shared, &changes);
}
