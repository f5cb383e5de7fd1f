//! Who is a member of what now: the directory file, as administrators changed it, with the
//! members zone logic added.

use ptt_directory::{Group, GroupId, Membership, TerminalId};

use super::locks::read;
use super::state::Roster;

impl Roster {
    /// A terminal's rights in a group now; `None` if it is not a member.
    pub fn membership(&self, terminal: TerminalId, group: GroupId) -> Option<Membership> {
        self.assigned(terminal, group).or_else(|| {
            read(&self.dynamic)
                .get(&terminal)
                .and_then(|groups| groups.get(&group))
                .and_then(|_| self.dynamic_rights(terminal))
        })
    }

    /// The rights from the file as an administrator changed them, without zone logic's.
    pub(super) fn assigned(&self, terminal: TerminalId, group: GroupId) -> Option<Membership> {
        let changed = read(&self.changed);
        match changed.get(&terminal).and_then(|groups| groups.get(&group)) {
            Some(rights) => *rights,
            None => self.directory.membership(terminal, group).copied(),
        }
    }

    /// What a terminal brought in by zone logic may do: listen and talk, up to its own
    /// priority cap.
    pub(super) fn dynamic_rights(&self, terminal: TerminalId) -> Option<Membership> {
        let cap = self.directory.terminal(terminal)?.max_priority;
        Some(Membership {
            terminal,
            listen: true,
            talk: true,
            max_priority: cap,
        })
    }

    /// A group's members now with their rights: the file's (as changed) in file order, then
    /// those added to it, by terminal id. Empty for an unknown group.
    pub fn members(&self, group: GroupId) -> Vec<Membership> {
        let changed = read(&self.changed);
        let change = |terminal: TerminalId| changed.get(&terminal).and_then(|g| g.get(&group));
        let mut out: Vec<Membership> = self
            .directory
            .members(group)
            .iter()
            .filter_map(|member| match change(member.terminal) {
                Some(changed) => *changed,
                None => Some(*member),
            })
            .collect();
        let mut added: Vec<Membership> = changed
            .iter()
            .filter(|(terminal, _)| self.directory.membership(**terminal, group).is_none())
            .filter_map(|(_, groups)| groups.get(&group).copied().flatten())
            .collect();
        added.sort_unstable_by_key(|m| m.terminal);
        out.append(&mut added);
        drop(changed);
        for (terminal, _) in self.dynamic_members(group) {
            if !out.iter().any(|m| m.terminal == terminal)
                && let Some(rights) = self.dynamic_rights(terminal)
            {
                out.push(rights);
            }
        }
        out
    }

    /// The groups a terminal belongs to now, each with its rights: the file's (as changed)
    /// in file order, then the groups it was added to, by group id.
    pub fn groups_of(&self, terminal: TerminalId) -> Vec<(&Group, Membership)> {
        let changed = read(&self.changed);
        let changes = changed.get(&terminal);
        let mut out: Vec<(&Group, Membership)> = self
            .directory
            .groups_of(terminal)
            .filter_map(
                |(group, rights)| match changes.and_then(|c| c.get(&group.id)) {
                    Some(changed) => changed.map(|rights| (group, rights)),
                    None => Some((group, *rights)),
                },
            )
            .collect();
        for (&group, rights) in changes.into_iter().flatten() {
            if let Some(rights) = rights
                && self.directory.membership(terminal, group).is_none()
                && let Some(group) = self.directory.group(group)
            {
                out.push((group, *rights));
            }
        }
        drop(changed);
        let grants: Vec<GroupId> = read(&self.dynamic)
            .get(&terminal)
            .map(|groups| groups.keys().copied().collect())
            .unwrap_or_default();
        for group in grants {
            if !out.iter().any(|(g, _)| g.id == group)
                && let (Some(group), Some(rights)) =
                    (self.directory.group(group), self.dynamic_rights(terminal))
            {
                out.push((group, rights));
            }
        }
        out
    }

    /// Whether two terminals are members of one group (now, by any means).
    pub fn share_a_group(&self, a: TerminalId, b: TerminalId) -> bool {
        let groups_of_b: Vec<GroupId> = self
            .groups_of(b)
            .into_iter()
            .map(|(group, _)| group.id)
            .collect();
        self.groups_of(a)
            .into_iter()
            .any(|(group, _)| groups_of_b.contains(&group.id))
    }
}
