//! The directory as changed at run time: terminals disabled and group memberships changed
//! through the admin API of the ops port, on top of the directory file loaded at start.
//!
//! The file stays the truth of what exists (terminals, groups, their static members); the
//! roster holds what an administrator changed since. Each change is written to the call log
//! (`admin_actions`) before it is applied and replayed from there at start, so a disabled
//! terminal stays disabled across a restart. Sessions ask the roster, not the file, who may
//! log in and which groups a terminal belongs to.
//!
//! On top of both, zone logic (`crate::dispatch`) adds members for a while: the guards of a
//! compound a patrol is passing, the guards pulled into a backup call. Those grants live
//! only in memory (the call log records each change in `regroups`, but a restart starts
//! without them: patrols report their positions again, emergencies are declared again).
//!
//! Reads take a short read lock (never held across an await) at login, join and regroup —
//! never on the voice path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ptt_calllog::{AdminAction, CallLogError, CallLogReader, RegroupReason};
use ptt_directory::{Directory, Group, GroupId, Membership, TerminalId, ZoneId};

/// A membership granted by zone logic rather than the directory or an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicGrant {
    /// Why ([`RegroupReason::ZoneEntered`] or [`RegroupReason::Backup`]).
    pub reason: RegroupReason,
    /// The premises zone that brought the terminal in.
    pub zone: ZoneId,
}

/// Why an admin action cannot be applied; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// The terminal is not in the directory file: check the id.
    #[error("no terminal {0}")]
    UnknownTerminal(TerminalId),
    /// The group is not in the directory file: check the id.
    #[error("no group {0}")]
    UnknownGroup(GroupId),
    /// Removing a member that is not one: nothing to do.
    #[error("terminal {terminal} is not a member of group {group}")]
    NotMember {
        /// The terminal.
        terminal: TerminalId,
        /// The group.
        group: GroupId,
    },
    /// A member that may neither listen nor talk: remove it instead.
    #[error("a member must at least listen or talk")]
    NoRights,
}

/// Runtime changes to the directory; shared by the sessions and the admin API.
#[derive(Debug)]
pub struct Roster {
    directory: Arc<Directory>,
    disabled: RwLock<HashSet<TerminalId>>,
    /// Per terminal, the groups whose membership differs from the file: `Some` rights
    /// (added, or rights changed) or `None` (removed).
    changed: RwLock<HashMap<TerminalId, BTreeMap<GroupId, Option<Membership>>>>,
    /// Per terminal, the groups zone logic added it to (never one it is a member of
    /// otherwise).
    dynamic: RwLock<HashMap<TerminalId, BTreeMap<GroupId, DynamicGrant>>>,
    /// Held by the admin API from writing an action to applying it, so the log holds the
    /// actions in the order they took effect (and replays to the same state).
    writing: tokio::sync::Mutex<()>,
    /// When a refused login of each disabled terminal was last logged (see
    /// [`Roster::note_refused_login`]); only disabled terminals have an entry.
    refusals_logged: Mutex<HashMap<TerminalId, Instant>>,
}

/// A disabled terminal's refused logins are logged at most this often.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

impl Roster {
    /// A roster without changes over `directory`.
    pub fn new(directory: Arc<Directory>) -> Self {
        Self {
            directory,
            disabled: RwLock::new(HashSet::new()),
            changed: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(HashMap::new()),
            writing: tokio::sync::Mutex::new(()),
            refusals_logged: Mutex::new(HashMap::new()),
        }
    }

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

    /// The directory file as loaded.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
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

    /// Notes a refused login of the disabled `terminal` at `now`; whether to log it (call
    /// log row and warning): once per [`REFUSAL_LOG_INTERVAL`] per terminal, so a terminal
    /// retrying without end costs no disk. The map holds disabled terminals only.
    pub fn note_refused_login(&self, terminal: TerminalId, now: Instant) -> bool {
        let mut logged = lock(&self.refusals_logged);
        match logged.get(&terminal) {
            Some(last) if now.saturating_duration_since(*last) < REFUSAL_LOG_INTERVAL => false,
            _ if !self.is_disabled(terminal) => false,
            _ => {
                logged.insert(terminal, now);
                true
            }
        }
    }

    /// The disabled terminals, in id order.
    pub fn disabled(&self) -> Vec<TerminalId> {
        let mut out: Vec<_> = read(&self.disabled).iter().copied().collect();
        out.sort_unstable();
        out
    }

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
    fn assigned(&self, terminal: TerminalId, group: GroupId) -> Option<Membership> {
        let changed = read(&self.changed);
        match changed.get(&terminal).and_then(|groups| groups.get(&group)) {
            Some(rights) => *rights,
            None => self.directory.membership(terminal, group).copied(),
        }
    }

    /// What a terminal brought in by zone logic may do: listen and talk, up to its own
    /// priority cap.
    fn dynamic_rights(&self, terminal: TerminalId) -> Option<Membership> {
        let cap = self.directory.terminal(terminal)?.max_priority;
        Some(Membership {
            terminal,
            listen: true,
            talk: true,
            max_priority: cap,
        })
    }

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

/// A read guard; a writer that panicked left a consistent map (every change is one insert
/// or remove), so poisoning is ignored.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptt_calllog::{AdminActionRecord, CallLog, Record};
    use ptt_directory::Priority;

    fn roster() -> Roster {
        Roster::new(Arc::new(Directory::demo().unwrap()))
    }

    /// A terminal of the demo district and a group it is not a member of.
    fn outsider(roster: &Roster) -> (TerminalId, GroupId) {
        let directory = roster.directory();
        for terminal in directory.terminals() {
            for group in directory.groups() {
                if directory.membership(terminal.id, group.id).is_none() {
                    return (terminal.id, group.id);
                }
            }
        }
        panic!("everyone is in every group");
    }

    #[test]
    fn add_change_and_remove_a_member() {
        let roster = roster();
        let (terminal, group) = outsider(&roster);
        let before = roster.groups_of(terminal).len();
        let add = AdminAction::SetMember {
            group,
            terminal,
            listen: true,
            talk: false,
            max_priority: Some(Priority::Emergency),
        };
        roster.apply(&add).unwrap();
        let rights = roster.membership(terminal, group).unwrap();
        assert!(rights.listen && !rights.talk);
        // Capped by the terminal's own priority, as in the file.
        let cap = roster.directory().terminal(terminal).unwrap().max_priority;
        assert_eq!(rights.max_priority, cap.min(Priority::Emergency));
        assert_eq!(roster.groups_of(terminal).len(), before + 1);
        assert_eq!(roster.groups_of(terminal).last().unwrap().0.id, group);

        roster
            .apply(&AdminAction::RemoveMember { group, terminal })
            .unwrap();
        assert_eq!(roster.membership(terminal, group), None);
        assert_eq!(roster.groups_of(terminal).len(), before);
        assert_eq!(
            roster.apply(&AdminAction::RemoveMember { group, terminal }),
            Err(RosterError::NotMember { terminal, group })
        );
    }

    #[test]
    fn removing_a_member_of_the_file_hides_it_until_added_back() {
        let roster = roster();
        let directory = roster.directory().clone();
        let terminal = directory.terminals()[0].id;
        let (group, in_file) = directory
            .groups_of(terminal)
            .map(|(g, m)| (g.id, *m))
            .next()
            .unwrap();
        roster
            .apply(&AdminAction::RemoveMember { group, terminal })
            .unwrap();
        assert!(
            roster
                .groups_of(terminal)
                .iter()
                .all(|(g, _)| g.id != group)
        );
        roster
            .apply(&AdminAction::SetMember {
                group,
                terminal,
                listen: in_file.listen,
                talk: in_file.talk,
                max_priority: Some(in_file.max_priority),
            })
            .unwrap();
        assert_eq!(roster.membership(terminal, group), Some(in_file));
        // Back to the file's rights: nothing is left in the overlay.
        assert!(read(&roster.changed).values().all(BTreeMap::is_empty));
    }

    #[test]
    fn members_follow_the_changes() {
        let roster = roster();
        let (outsider, group) = outsider(&roster);
        let in_file: Vec<_> = roster.directory().members(group).to_vec();
        assert_eq!(roster.members(group), in_file);
        let removed = in_file[0].terminal;
        roster
            .apply(&AdminAction::RemoveMember {
                group,
                terminal: removed,
            })
            .unwrap();
        roster
            .apply(&AdminAction::SetMember {
                group,
                terminal: outsider,
                listen: true,
                talk: false,
                max_priority: None,
            })
            .unwrap();
        let now: Vec<_> = roster.members(group).iter().map(|m| m.terminal).collect();
        assert!(!now.contains(&removed), "{now:?}");
        assert_eq!(now.last(), Some(&outsider));
        assert_eq!(now.len(), in_file.len());
        assert!(roster.members(GroupId(u32::MAX)).is_empty());
    }

    #[test]
    fn refused_logins_of_a_disabled_terminal_are_logged_once_a_minute() {
        let roster = roster();
        let terminal = roster.directory().terminals()[0].id;
        let start = Instant::now();
        // Not disabled: nothing to note.
        assert!(!roster.note_refused_login(terminal, start));
        roster.apply(&AdminAction::Disable { terminal }).unwrap();
        assert!(roster.note_refused_login(terminal, start));
        assert!(!roster.note_refused_login(terminal, start + Duration::from_secs(59)));
        assert!(roster.note_refused_login(terminal, start + REFUSAL_LOG_INTERVAL));
        // Enabled and disabled again: the next refusal is logged at once.
        roster.apply(&AdminAction::Enable { terminal }).unwrap();
        roster.apply(&AdminAction::Disable { terminal }).unwrap();
        assert!(roster.note_refused_login(terminal, start + REFUSAL_LOG_INTERVAL));
    }

    #[test]
    fn unknown_ids_and_empty_rights_are_refused() {
        let roster = roster();
        let (terminal, group) = outsider(&roster);
        let nobody = TerminalId(u32::MAX);
        assert_eq!(
            roster.apply(&AdminAction::Disable { terminal: nobody }),
            Err(RosterError::UnknownTerminal(nobody))
        );
        let nowhere = GroupId(u32::MAX);
        assert_eq!(
            roster.check(&AdminAction::ClearEmergency { group: nowhere }),
            Err(RosterError::UnknownGroup(nowhere))
        );
        let neither = AdminAction::SetMember {
            group,
            terminal,
            listen: false,
            talk: false,
            max_priority: None,
        };
        assert_eq!(roster.apply(&neither), Err(RosterError::NoRights));
        assert_eq!(roster.membership(terminal, group), None);
    }

    #[tokio::test]
    async fn actions_in_the_call_log_are_replayed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pttd.sqlite");
        let directory = Arc::new(Directory::demo().unwrap());
        let probe = Roster::new(directory.clone());
        let (terminal, group) = outsider(&probe);
        let other = directory.terminals()[1].id;
        let log = CallLog::open(&path, 16).unwrap();
        let actions = [
            AdminAction::Disable { terminal },
            AdminAction::Disable { terminal: other },
            AdminAction::Enable { terminal: other },
            AdminAction::SetMember {
                group,
                terminal,
                listen: true,
                talk: true,
                max_priority: None,
            },
            AdminAction::ClearEmergency { group },
            // No longer in the directory: skipped, the rest still applies.
            AdminAction::Disable {
                terminal: TerminalId(u32::MAX),
            },
        ];
        for (i, action) in actions.iter().enumerate() {
            log.record_durable(Record::Admin(AdminActionRecord {
                action: action.clone(),
                by: "admin".into(),
                at_ms: i64::try_from(i).unwrap(),
            }))
            .await
            .unwrap();
        }
        log.close().await.unwrap();

        let rows = CallLogReader::open(&path).unwrap().admin_actions().unwrap();
        let read_back: Vec<_> = rows.iter().map(|r| r.record.action.clone()).collect();
        assert_eq!(read_back, actions);

        let roster = Roster::load(directory, &path).unwrap();
        assert_eq!(roster.disabled(), vec![terminal]);
        assert!(!roster.is_disabled(other));
        let rights = roster.membership(terminal, group).unwrap();
        assert!(rights.listen && rights.talk);
    }
}
