//! Joining and leaving groups, and the terminal's groups with its rights as
//! `GroupInfo` (told at start and when regrouped).

use ptt_proto::pb;

use super::session::Session;
use crate::group::Command;
use crate::{policy, wire};
use ptt_directory::{GroupId, Role, TerminalId};

impl Session {
    /// Every group of the terminal with its rights, marked joined where the
    /// terminal may listen.
    pub(super) fn group_infos(&self) -> Vec<pb::GroupInfo> {
        let terminal = TerminalId(self.link.terminal);
        let dispatcher = self.terminal().is_some_and(|t| t.role == Role::Dispatcher);
        self.shared
            .roster
            .groups_of(terminal)
            .into_iter()
            .map(|(group, membership)| {
                let rights = self
                    .terminal()
                    .map(|t| policy::member_rights(t, &membership));
                pb::GroupInfo {
                    group_id: group.id.0,
                    name: group.name.clone(),
                    rights: Some(pb::GroupRights {
                        listen: membership.listen,
                        talk: membership.talk,
                        max_priority: wire::priority(policy::priority(membership.max_priority))
                            .into(),
                        preempt: rights.is_some_and(|r| r.preemptive),
                        // What the floor will allow, not just the role.
                        broadcast: rights.is_some_and(|r| r.may_talk && r.is_dispatcher()),
                        dispatch: dispatcher,
                    }),
                    joined: membership.listen,
                    dynamic: self
                        .shared
                        .roster
                        .dynamic_grant(terminal, group.id)
                        .is_some(),
                }
            })
            .collect()
    }

    /// Joins the group: checked against the roster, then handed to the
    /// group's task with the terminal's rights.
    pub(super) async fn join(&mut self, id: u64, group_id: u32) {
        let (Some(group), Some(terminal)) = (self.shared.groups.get(group_id), self.terminal())
        else {
            return self.error(id, pb::ErrorReason::UnknownGroup, "no such group");
        };
        let Some(membership) = self
            .shared
            .roster
            .membership(terminal.id, GroupId(group_id))
        else {
            return self.error(id, pb::ErrorReason::NotMember, "not a member of this group");
        };
        if !membership.listen {
            return self.error(
                id,
                pb::ErrorReason::Forbidden,
                "may not listen to this group",
            );
        }
        let rights = policy::member_rights(terminal, &membership);
        let Some(info) = self
            .group_infos()
            .into_iter()
            .find(|info| info.group_id == group_id)
        else {
            return self.error(id, pb::ErrorReason::NotMember, "not a member of this group");
        };
        let group = group.clone();
        self.joined.insert(group_id);
        group
            .command(Command::Join {
                link: self.link.clone(),
                rights,
                info,
                request_id: id,
            })
            .await;
        self.announce_presence(pb::PresenceState::Joined, group_id);
    }

    /// Leaves a joined group.
    pub(super) async fn leave(&mut self, id: u64, group_id: u32) {
        if !self.joined.remove(&group_id) {
            return self.error(id, pb::ErrorReason::NotMember, "not joined to this group");
        }
        if let Some(group) = self.shared.groups.get(group_id) {
            group
                .command(Command::Leave {
                    terminal: self.link.terminal,
                    session: self.link.session,
                    disconnected: false,
                    request_id: id,
                })
                .await;
        }
        self.announce_presence(pb::PresenceState::Left, group_id);
    }

    /// Tells the control room the terminal joined or left `group_id`: at
    /// once, or coalesced with the changes that follow within the window
    /// (`presence`), sent from the session's loop when due.
    fn announce_presence(&mut self, state: pb::PresenceState, group_id: u32) {
        if self
            .presence
            .offer(group_id, state, std::time::Instant::now())
        {
            self.presence_in(state, group_id);
        }
    }
}
