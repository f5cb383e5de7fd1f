//! The pool of temporary groups and the table of calls using them: which slot each call
//! holds, which terminal is in which call, and the slots free.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use ptt_directory::Directory;
use tokio_util::sync::CancellationToken;

use super::other_relays::OtherRelays;
use crate::group::GroupShared;
use crate::link::Link;
use crate::log_sink::LogSink;
use crate::online::Online;
use crate::roster::Roster;

/// The first temporary group id; directory group ids stay below it.
pub const PRIVATE_CALL_GROUP_BASE: u32 = ptt_directory::FIRST_RESERVED_GROUP_ID;

/// One call from setup to hang-up.
#[derive(Debug)]
pub(super) struct Call {
    /// The parties' sessions at setup: a later session of either is not a party.
    pub(super) caller: Arc<Link>,
    /// The callee's session at setup.
    pub(super) callee: Arc<Link>,
    /// The temporary group it holds (index into the pool).
    pub(super) slot: usize,
    /// An emergency call (it pre-empted the callee's other call).
    pub(super) emergency: bool,
    /// When it was set up (unix ms).
    pub(super) started_at_ms: i64,
    /// Set when the callee accepted.
    pub(super) answered_at_ms: Option<i64>,
    /// Stops the no-answer timer once answered or ended.
    pub(super) ringing: Option<tokio::task::AbortHandle>,
}

impl Call {
    /// Whether `link` is one of the parties' sessions.
    pub(super) fn is_party(&self, link: &Link) -> bool {
        [&self.caller, &self.callee]
            .iter()
            .any(|party| party.terminal == link.terminal && party.session == link.session)
    }
}

/// The calls up now and the free temporary groups.
#[derive(Debug, Default)]
pub(super) struct Calls {
    /// Slots not held by a call.
    pub(super) free: Vec<usize>,
    /// Calls by id.
    pub(super) calls: HashMap<u64, Call>,
    /// Each terminal's call (caller or callee): at most one.
    pub(super) by_terminal: HashMap<u32, u64>,
}

/// One temporary group and the lock that orders its joins and leaves.
#[derive(Debug)]
pub(super) struct Slot {
    /// The group.
    pub(super) group: Arc<GroupShared>,
    /// Held while parties join or leave it.
    pub(super) moving: tokio::sync::Mutex<()>,
}

/// The pool of temporary groups and the calls using them.
#[derive(Debug)]
pub struct PrivateCalls {
    /// The temporary groups, by slot.
    pub(super) slots: Vec<Slot>,
    /// The calls and the free slots.
    pub(super) state: Mutex<Calls>,
    /// The last call id handed out.
    pub(super) next_call: AtomicU64,
    /// Who may call whom, and the parties' rights in the call's group.
    pub(super) directory: Arc<Directory>,
    /// Whether two terminals share a group.
    pub(super) roster: Arc<Roster>,
    /// To reach the callee.
    pub(super) online: Arc<Online>,
    /// Every call is logged when it ends.
    pub(super) log: LogSink,
    /// Stops the no-answer timers at shutdown.
    pub(super) shutdown: CancellationToken,
    /// How long a call rings before the caller is told nobody answered.
    pub(super) answer_timeout: Duration,
    /// The terminals of the other relays of a cluster, if any.
    pub(super) other_relays: OnceLock<Arc<dyn OtherRelays>>,
}

impl PrivateCalls {
    /// The pool over `groups`, the temporary groups (ids from the base, in order);
    /// a call rings for `answer_timeout` at most (see [`DEFAULT_ANSWER_TIMEOUT`]).
    ///
    /// [`DEFAULT_ANSWER_TIMEOUT`]: super::DEFAULT_ANSWER_TIMEOUT
    pub fn new(
        groups: Vec<Arc<GroupShared>>,
        directory: Arc<Directory>,
        roster: Arc<Roster>,
        online: Arc<Online>,
        log: LogSink,
        shutdown: CancellationToken,
        answer_timeout: Duration,
    ) -> Self {
        let free = (0..groups.len()).rev().collect();
        let slots = groups
            .into_iter()
            .map(|group| Slot {
                group,
                moving: tokio::sync::Mutex::new(()),
            })
            .collect();
        Self {
            slots,
            state: Mutex::new(Calls {
                free,
                ..Calls::default()
            }),
            next_call: AtomicU64::new(0),
            directory,
            roster,
            online,
            log,
            shutdown,
            answer_timeout,
            other_relays: OnceLock::new(),
        }
    }

    /// Finds callees on the other relays of a cluster through `others` (set
    /// once, by the cluster).
    pub fn find_callees_with(&self, others: Arc<dyn OtherRelays>) {
        let _ = self.other_relays.set(others);
    }

    /// Whether `terminal` is a connected party of the call using `group`: it may then
    /// request that group's floor as if it had joined it.
    pub fn is_party(&self, group: u32, terminal: u32) -> bool {
        let Some(slot) = group.checked_sub(PRIVATE_CALL_GROUP_BASE) else {
            return false;
        };
        let state = lock(&self.state);
        state
            .by_terminal
            .get(&terminal)
            .and_then(|id| state.calls.get(id))
            .is_some_and(|call| call.answered_at_ms.is_some() && call.slot == slot as usize)
    }

    /// Whether `group` is one of the temporary groups.
    pub fn is_call_group(&self, group: u32) -> bool {
        group
            .checked_sub(PRIVATE_CALL_GROUP_BASE)
            .is_some_and(|slot| (slot as usize) < self.slots.len())
    }

    /// Calls up now (ringing or connected).
    pub fn active(&self) -> usize {
        lock(&self.state).calls.len()
    }

    /// The id of the temporary group in `slot`.
    pub(super) fn group_id(slot: usize) -> u32 {
        PRIVATE_CALL_GROUP_BASE + slot as u32
    }
}

/// Removes call `call_id` from the map if `which` holds for it, in one locked step; its
/// group goes back to the pool with [`free`] once nobody is joined to it.
pub(super) fn take_if(
    calls: &PrivateCalls,
    call_id: u64,
    which: impl Fn(&Call) -> bool,
) -> Option<Call> {
    let mut state = lock(&calls.state);
    if !state.calls.get(&call_id).is_some_and(which) {
        return None;
    }
    let call = state.calls.remove(&call_id)?;
    for terminal in [call.caller.terminal, call.callee.terminal] {
        if state.by_terminal.get(&terminal) == Some(&call_id) {
            state.by_terminal.remove(&terminal);
        }
    }
    Some(call)
}

/// Returns a call's group to the pool.
pub(super) fn free(calls: &PrivateCalls, call: &Call) {
    lock(&calls.state).free.push(call.slot);
}

/// The calls' lock; poisoning is ignored (every change is one insert or remove).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
