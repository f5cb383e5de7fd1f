//! A membership zone logic grants, and why.

use ptt_calllog::RegroupReason;
use ptt_directory::ZoneId;

/// A membership granted by zone logic rather than the directory or an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicGrant {
    /// Why ([`RegroupReason::ZoneEntered`] or [`RegroupReason::Backup`]).
    pub reason: RegroupReason,
    /// The premises zone that brought the terminal in.
    pub zone: ZoneId,
}
