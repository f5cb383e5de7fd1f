//! Zone logic's memberships: granted while a patrol passes or an emergency needs backup,
//! kept in memory only.

use ptt_directory::{GroupId, TerminalId};

use super::dynamic_grant::DynamicGrant;
use super::locks::{read, write};
use super::state::Roster;

impl Roster {
    /// Adds `terminal` to `group` for zone logic. Returns false (and changes nothing) if
    /// it is a member already, by any means, or either is unknown.
    pub fn add_dynamic(&self, group: GroupId, terminal: TerminalId, grant: DynamicGrant) -> bool {
        if self.directory.group(group).is_none() || self.assigned(terminal, group).is_some() {
            return false;
        }
        let mut dynamic = write(&self.dynamic);
        let groups = dynamic.entry(terminal).or_default();
        if groups.contains_key(&group) {
            return false;
        }
        groups.insert(group, grant);
        true
    }

    /// Takes back a grant of zone logic; the grant, or `None` if there was none.
    pub fn remove_dynamic(&self, group: GroupId, terminal: TerminalId) -> Option<DynamicGrant> {
        let mut dynamic = write(&self.dynamic);
        let groups = dynamic.get_mut(&terminal)?;
        let grant = groups.remove(&group);
        if groups.is_empty() {
            dynamic.remove(&terminal);
        }
        grant
    }

    /// Zone logic's grant of `terminal` in `group`, if that is how it is a member.
    pub fn dynamic_grant(&self, terminal: TerminalId, group: GroupId) -> Option<DynamicGrant> {
        if self.assigned(terminal, group).is_some() {
            return None;
        }
        read(&self.dynamic)
            .get(&terminal)
            .and_then(|groups| groups.get(&group))
            .copied()
    }

    /// The members zone logic added to `group`, by terminal id.
    pub fn dynamic_members(&self, group: GroupId) -> Vec<(TerminalId, DynamicGrant)> {
        let mut out: Vec<_> = read(&self.dynamic)
            .iter()
            .filter_map(|(terminal, groups)| groups.get(&group).map(|grant| (*terminal, *grant)))
            .collect();
        out.retain(|(terminal, _)| self.assigned(*terminal, group).is_none());
        out.sort_unstable_by_key(|(terminal, _)| *terminal);
        out
    }

    /// Replaces the grant of `terminal` in `group`, if it has one, keeping the membership:
    /// a patrol's guards become the emergency's when the patrol group goes into emergency.
    pub fn regrant(&self, group: GroupId, terminal: TerminalId, grant: DynamicGrant) {
        if let Some(held) = write(&self.dynamic)
            .get_mut(&terminal)
            .and_then(|groups| groups.get_mut(&group))
        {
            *held = grant;
        }
    }
}
