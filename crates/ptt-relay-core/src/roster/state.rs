//! The roster itself: the directory file it stands on and the changes kept on top of it
//! (administrators' and zone logic's), each behind its own short lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use ptt_directory::{Directory, GroupId, Membership, TerminalId};

use super::dynamic_grant::DynamicGrant;

/// Runtime changes to the directory; shared by the sessions and the admin API.
#[derive(Debug)]
pub struct Roster {
    pub(super) directory: Arc<Directory>,
    pub(super) disabled: RwLock<HashSet<TerminalId>>,
    /// Per terminal, the groups whose membership differs from the file: `Some` rights
    /// (added, or rights changed) or `None` (removed).
    pub(super) changed: RwLock<HashMap<TerminalId, BTreeMap<GroupId, Option<Membership>>>>,
    /// Per terminal, the groups zone logic added it to (never one it is a member of
    /// otherwise).
    pub(super) dynamic: RwLock<HashMap<TerminalId, BTreeMap<GroupId, DynamicGrant>>>,
    /// Held by the admin API from writing an action to applying it, so the log holds the
    /// actions in the order they took effect (and replays to the same state).
    pub(super) writing: tokio::sync::Mutex<()>,
    /// When a refused login of each disabled terminal was last logged (see
    /// [`Roster::note_refused_login`]); only disabled terminals have an entry.
    pub(super) refusals_logged: Mutex<HashMap<TerminalId, Instant>>,
}

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

    /// The directory file as loaded.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }
}
