//! Following membership changes while the terminal is online — an
//! administrator's, or zone logic's (relay patrol, backup calls) — it joins
//! the groups it was added to (where it may listen), leaves those it was
//! removed from, and is told each change with `Regrouped`, as a radio is
//! regrouped over the air. The reason comes from how the membership was
//! granted: a zone logic grant gives ZONE_ENTERED or EMERGENCY_BACKUP when
//! added and ZONE_LEFT or EMERGENCY_CLEARED when taken back; anything else
//! is ADMIN.
//!
//! Rights that shrink take effect on the floor at once: a member that may no
//! longer talk (or only at a lower priority) leaves the group's floor and joins
//! again with its new rights. The leave ends its burst (the others see the
//! floor idle, the head of the queue is granted) and drops its queued request,
//! which would otherwise keep its old priority and be granted later without a
//! rights check; the join then applies the new rights.

use std::collections::HashMap;

use ptt_proto::pb::{self, server_message::Body};

use super::session::{Held, Session};
use crate::dispatch;
use crate::group::Command;
use crate::roster::DynamicGrant;
use ptt_directory::{Membership, TerminalId};

impl Session {
    /// The terminal's groups and rights now, from the roster.
    pub(super) fn memberships(&self) -> HashMap<u32, Held> {
        let terminal = TerminalId(self.link.terminal);
        self.shared
            .roster
            .groups_of(terminal)
            .into_iter()
            .map(|(group, rights)| {
                let grant = self.shared.roster.dynamic_grant(terminal, group.id);
                (group.id.0, Held { rights, grant })
            })
            .collect()
    }

    /// Brings the session in line with the roster after an administrator or
    /// zone logic changed the terminal's memberships. Groups the user left by hand stay
    /// left unless their rights changed; a group whose rights changed is
    /// joined again so the floor applies the new rights.
    pub(super) async fn regroup(&mut self) {
        let now = self.memberships();
        let before = std::mem::replace(&mut self.known, now.clone());

        let mut removed: Vec<(u32, Option<DynamicGrant>)> = before
            .iter()
            .filter(|(group, _)| !now.contains_key(group))
            .map(|(group, held)| (*group, held.grant))
            .collect();
        removed.sort_unstable_by_key(|(group, _)| *group);
        for (group_id, grant) in removed {
            self.stop_hearing(group_id).await;
            let ended = grant.map(|grant| DynamicGrant {
                reason: grant.reason.ending(),
                ..grant
            });
            self.regrouped(group_id, pb::RegroupChange::Removed, ended, None);
        }

        let mut changed: Vec<(u32, Held)> = now
            .into_iter()
            .filter(|(group, held)| before.get(group) != Some(held))
            .collect();
        changed.sort_unstable_by_key(|(group, _)| *group);
        let infos = self.group_infos();
        for (group_id, held) in changed {
            let info = infos.iter().find(|info| info.group_id == group_id).cloned();
            let rights = held.rights;
            let old = before.get(&group_id).map(|held| &held.rights);
            let joined = self.joined.contains(&group_id);
            if rights.listen && (old.is_none() || joined) {
                if joined && old.is_some_and(|old| narrowed(old, &rights)) {
                    self.withdraw_floor(group_id, &rights).await;
                }
                // A join of a joined member updates its rights in the floor.
                self.join(0, group_id).await;
            } else if !rights.listen {
                self.stop_hearing(group_id).await;
            }
            // Told after the join is queued: whatever the terminal does next in
            // the group reaches the group's task after it.
            self.regrouped(group_id, pb::RegroupChange::Added, held.grant, info);
        }
    }

    /// Leaves the group if joined, without an answer to send; a burst it
    /// held is revoked.
    async fn stop_hearing(&mut self, group_id: u32) {
        if self.joined.contains(&group_id) {
            let notice = self.floor_notice(group_id, pb::FloorDenyReason::NotMember);
            self.leave(0, group_id).await;
            if let Some(notice) = notice {
                self.link.send(0, notice);
            }
        }
    }

    /// Takes the floor and any queued request away from this terminal in a
    /// group it stays joined to: the group task lets it leave (its burst
    /// ends, the queue moves on), and the join that follows applies the
    /// new rights. The terminal is told as for a revoke or a refusal, so a
    /// client talking or waiting stops.
    async fn withdraw_floor(&mut self, group_id: u32, rights: &Membership) {
        let Some(group) = self.shared.groups.get(group_id).cloned() else {
            return;
        };
        let reason = if rights.talk {
            pb::FloorDenyReason::PriorityNotAllowed
        } else {
            pb::FloorDenyReason::ListenOnly
        };
        let notice = self.floor_notice(group_id, reason);
        group
            .command(Command::Leave {
                terminal: self.link.terminal,
                session: self.link.session,
                disconnected: false,
                request_id: 0,
            })
            .await;
        if let Some(notice) = notice {
            self.link.send(0, notice);
        }
    }

    /// What to tell this terminal when it leaves a group's floor for an
    /// administrator: `FloorRevoked` (REMOVED) if it holds the floor,
    /// `FloorDenied` if somebody waits in the queue (it may be the one; the
    /// session does not track its requests, and a client not waiting ignores
    /// a refusal), else nothing.
    fn floor_notice(&self, group_id: u32, deny: pb::FloorDenyReason) -> Option<Body> {
        let group = self.shared.groups.get(group_id)?;
        if let Some(burst_id) = group.burst_of(self.link.terminal) {
            return Some(Body::FloorRevoked(pb::FloorRevoked {
                group_id,
                burst_id,
                reason: pb::FloorRevokeReason::Removed.into(),
                grace_ms: 0,
            }));
        }
        (group.queue_len() > 0).then(|| {
            Body::FloorDenied(pb::FloorDenied {
                group_id,
                reason: deny.into(),
            })
        })
    }

    /// Tells the terminal it was regrouped: by zone logic's grant `cause`
    /// (its reason and premises zone), or by an administrator (`None`).
    fn regrouped(
        &self,
        group_id: u32,
        change: pb::RegroupChange,
        cause: Option<DynamicGrant>,
        group: Option<pb::GroupInfo>,
    ) {
        let (reason, zone) = match cause {
            Some(grant) => (
                dispatch::wire_reason(grant.reason),
                dispatch::zone_name(&self.shared.dispatch, grant.zone),
            ),
            None => (pb::RegroupReason::Admin, String::new()),
        };
        self.link.send(
            0,
            Body::Regrouped(pb::Regrouped {
                group_id,
                terminal_id: self.link.terminal,
                change: change.into(),
                reason: reason.into(),
                group,
                zone,
            }),
        );
    }
}

/// Whether `now` allows less on the floor than `before`: no more talking, or a
/// lower priority cap.
fn narrowed(before: &Membership, now: &Membership) -> bool {
    (before.talk && !now.talk) || now.max_priority < before.max_priority
}
