//! Why an administrator's change to the roster was refused.

use ptt_directory::{GroupId, TerminalId};

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
