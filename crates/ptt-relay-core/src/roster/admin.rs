//! The administrators' changes: replayed from the call log at start, checked before they
//! are written, then applied (disabled terminals, memberships added, changed or removed).

use std::path::Path;
use std::sync::Arc;

use ptt_calllog::{AdminAction, CallLogError, CallLogReader};
use ptt_directory::{Directory, GroupId, Membership, TerminalId};

use super::error::RosterError;
use super::locks::{lock, read, write};
use super::state::Roster;

impl Roster {
    /// The roster of `directory` with every admin action of the call log at `calllog`
    /// replayed in order. An action that no longer fits the directory (its terminal or
    /// group was removed from the file) is skipped with a warning. Blocking (SQLite).
    pub fn load(directory: Arc<Directory>, calllog: &Path) -> Result<Self, CallLogError> {
        let roster = Self::new(directory);
        let reader = CallLogReader::open(calllog)?;
        let mut replayed = 0usize;
        for row in reader.admin_actions()? {
            match roster.apply(&row.record.action) {
                Ok(()) => replayed += 1,
                Err(error) => tracing::warn!(
                    %error,
                    row = row.id,
                    "admin action no longer fits the directory; skipped"
                ),
            }
        }
        if replayed > 0 {
            tracing::info!(replayed, "admin changes to the directory restored");
        }
        Ok(roster)
    }

    /// Waits for the admin API's turn to write and apply an action (see the field docs).
    pub async fn writing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writing.lock().await
    }

    /// Whether `action` can be applied now, without applying it: checked before it is
    /// written to the log, so the log holds only actions that took effect.
    pub fn check(&self, action: &AdminAction) -> Result<(), RosterError> {
        match *action {
            AdminAction::Disable { terminal } | AdminAction::Enable { terminal } => {
                self.known_terminal(terminal)
            }
            AdminAction::SetMember {
                group,
                terminal,
                listen,
                talk,
                ..
            } => {
                self.known_terminal(terminal)?;
                self.known_group(group)?;
                if listen || talk {
                    Ok(())
                } else {
                    Err(RosterError::NoRights)
                }
            }
            AdminAction::RemoveMember { group, terminal } => {
                self.known_terminal(terminal)?;
                self.known_group(group)?;
                // Zone logic's members come and go with it, not by hand.
                match self.assigned(terminal, group) {
                    Some(_) => Ok(()),
                    None => Err(RosterError::NotMember { terminal, group }),
                }
            }
            AdminAction::ClearEmergency { group } => self.known_group(group),
        }
    }

    /// Applies `action` (an emergency clear changes nothing here).
    pub fn apply(&self, action: &AdminAction) -> Result<(), RosterError> {
        self.check(action)?;
        match *action {
            AdminAction::Disable { terminal } => {
                write(&self.disabled).insert(terminal);
            }
            AdminAction::Enable { terminal } => {
                write(&self.disabled).remove(&terminal);
                lock(&self.refusals_logged).remove(&terminal);
            }
            AdminAction::SetMember {
                group,
                terminal,
                listen,
                talk,
                max_priority,
            } => {
                let cap = self
                    .directory
                    .terminal(terminal)
                    .ok_or(RosterError::UnknownTerminal(terminal))?
                    .max_priority;
                // The same rule as the file: the entry's cap, never above the terminal's.
                let rights = Membership {
                    terminal,
                    listen,
                    talk,
                    max_priority: max_priority.map_or(cap, |p| p.min(cap)),
                };
                let in_file = self.directory.membership(terminal, group).copied();
                // An administrator's rights replace a grant of zone logic.
                self.remove_dynamic(group, terminal);
                let mut changed = write(&self.changed);
                let entry = changed.entry(terminal).or_default();
                if in_file == Some(rights) {
                    entry.remove(&group);
                } else {
                    entry.insert(group, Some(rights));
                }
            }
            AdminAction::RemoveMember { group, terminal } => {
                let in_file = self.directory.membership(terminal, group).is_some();
                let mut changed = write(&self.changed);
                let entry = changed.entry(terminal).or_default();
                if in_file {
                    entry.insert(group, None);
                } else {
                    entry.remove(&group);
                }
            }
            AdminAction::ClearEmergency { .. } => {}
        }
        Ok(())
    }

    /// Whether the terminal was disabled by an administrator (it may not log in).
    pub fn is_disabled(&self, terminal: TerminalId) -> bool {
        read(&self.disabled).contains(&terminal)
    }

    /// The disabled terminals, in id order.
    pub fn disabled(&self) -> Vec<TerminalId> {
        let mut out: Vec<_> = read(&self.disabled).iter().copied().collect();
        out.sort_unstable();
        out
    }

    fn known_terminal(&self, terminal: TerminalId) -> Result<(), RosterError> {
        match self.directory.terminal(terminal) {
            Some(_) => Ok(()),
            None => Err(RosterError::UnknownTerminal(terminal)),
        }
    }

    fn known_group(&self, group: GroupId) -> Result<(), RosterError> {
        match self.directory.group(group) {
            Some(_) => Ok(()),
            None => Err(RosterError::UnknownGroup(group)),
        }
    }
}
