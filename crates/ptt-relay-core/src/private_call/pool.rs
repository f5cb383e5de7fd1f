//! The pool of temporary groups and the table of calls using them: which slot each call
//! holds, which terminal is in which call, and the slots free.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use ptt_calllog::now_ms;
use ptt_directory::Directory;
use ptt_proto::pb::server_message::Body;
use tokio_util::sync::CancellationToken;

use super::other_relays::OtherRelays;
use crate::group::GroupShared;
use crate::link::Link;
use crate::log_sink::LogSink;
use crate::online::Online;
use crate::roster::Roster;

/// The first temporary group id; directory group ids stay below it.
pub const PRIVATE_CALL_GROUP_BASE: u32 = ptt_directory::FIRST_RESERVED_GROUP_ID;

/// The first temporary group of the calls between two relays of a cluster
/// (above every relay's own pool, at most 4,096).
pub const CROSS_RELAY_CALL_GROUP_BASE: u32 = PRIVATE_CALL_GROUP_BASE + 0x0100_0000;

/// The relays of one cluster that can each place calls to the others'
/// terminals: each claims a number below it, which picks its share of the
/// temporary groups.
pub const MAX_CLUSTER_RELAYS: u16 = 16;

/// Calls between relays one relay can have placed at once. Such calls are
/// a dispatcher's or a guard's call to someone logged in elsewhere: far
/// fewer than the calls within a relay.
pub const CROSS_RELAY_CALLS_PER_RELAY: u32 = 32;

/// The ids of every relay's temporary groups for calls between relays:
/// every relay of a cluster has all of them, as ordinary groups of the
/// cluster (floor owned by one relay, voice on the group's subject), so
/// either party's relay can take part in any.
pub fn cross_relay_group_ids() -> impl Iterator<Item = u32> {
    let count = u32::from(MAX_CLUSTER_RELAYS) * CROSS_RELAY_CALLS_PER_RELAY;
    (0..count).map(|index| CROSS_RELAY_CALL_GROUP_BASE + index)
}

/// One party of a call.
#[derive(Debug, Clone)]
pub(super) enum Party {
    /// A terminal of this relay, in the session it had at setup: a later
    /// session of it is not a party.
    Here(Arc<Link>),
    /// A terminal of another relay of the cluster, which has the call too.
    Elsewhere {
        /// The terminal.
        terminal: u32,
        /// Its name.
        name: Arc<str>,
        /// Its relay.
        relay: Arc<str>,
    },
}

impl Party {
    /// The terminal.
    pub(super) fn terminal(&self) -> u32 {
        match self {
            Self::Here(link) => link.terminal,
            Self::Elsewhere { terminal, .. } => *terminal,
        }
    }

    /// Its name.
    pub(super) fn name(&self) -> &str {
        match self {
            Self::Here(link) => &link.name,
            Self::Elsewhere { name, .. } => name,
        }
    }

    /// Its session here, if it is a terminal of this relay.
    pub(super) fn link(&self) -> Option<&Arc<Link>> {
        match self {
            Self::Here(link) => Some(link),
            Self::Elsewhere { .. } => None,
        }
    }

    /// Its relay, if another.
    pub(super) fn relay(&self) -> Option<&Arc<str>> {
        match self {
            Self::Here(_) => None,
            Self::Elsewhere { relay, .. } => Some(relay),
        }
    }

    /// Whether it is a terminal of relay `relay` (another one).
    pub(super) fn is_of(&self, relay: &str) -> bool {
        self.relay().is_some_and(|at| **at == *relay)
    }

    /// Tells the party `body`, if it is a terminal of this relay (its own
    /// relay tells it otherwise).
    pub(super) fn send(&self, id: u64, body: Body) {
        if let Self::Here(link) = self {
            link.send(id, body);
        }
    }
}

/// One call from setup to hang-up.
#[derive(Debug)]
pub(super) struct Call {
    /// The caller. Its relay keeps the call: the no-answer timer, the
    /// temporary group and the call-log row.
    pub(super) caller: Party,
    /// The callee.
    pub(super) callee: Party,
    /// The temporary group it holds (see [`PrivateCalls::slot`]).
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
            .filter_map(|party| party.link())
            .any(|party| party.terminal == link.terminal && party.session == link.session)
    }

    /// The party that is a terminal of another relay, for a call between
    /// relays.
    pub(super) fn elsewhere(&self) -> Option<&Party> {
        [&self.caller, &self.callee]
            .into_iter()
            .find(|party| party.relay().is_some())
    }

    /// The relay of the party that is not here, for a call between relays.
    pub(super) fn other_relay(&self) -> Option<&Arc<str>> {
        self.elsewhere().and_then(Party::relay)
    }

    /// Whether the call is this relay's to keep (its caller is here).
    pub(super) fn kept_here(&self) -> bool {
        self.caller.link().is_some()
    }
}

/// The calls up now and the free temporary groups.
#[derive(Debug, Default)]
pub(super) struct Calls {
    /// This relay's own slots (for calls within it) not held by a call.
    pub(super) free: Vec<usize>,
    /// This relay's share of the slots for calls between relays, not held.
    pub(super) free_across: Vec<usize>,
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

impl Slot {
    fn new(group: Arc<GroupShared>) -> Self {
        Self {
            group,
            moving: tokio::sync::Mutex::new(()),
        }
    }
}

/// The pool of temporary groups and the calls using them.
#[derive(Debug)]
pub struct PrivateCalls {
    /// The temporary groups for calls within this relay, by slot.
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
    /// The other relays of a cluster, if any.
    pub(super) across: OnceLock<Across>,
}

/// What calls between relays need: the other relays, and the temporary
/// groups every relay of the cluster has for them.
#[derive(Debug)]
pub(super) struct Across {
    /// To find a callee's relay and tell it of the call.
    pub(super) relays: Arc<dyn OtherRelays>,
    /// Every relay's temporary groups for calls between relays (slots
    /// after this relay's own, in [`cross_relay_group_ids`] order).
    pub(super) slots: Vec<Slot>,
    /// Whether this relay has a share of them (a number in the cluster):
    /// without one it only takes the other relays' calls.
    pub(super) places_calls: bool,
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
        let slots = groups.into_iter().map(Slot::new).collect();
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
            across: OnceLock::new(),
        }
    }

    /// Places and takes calls between this relay's terminals and the other
    /// relays' through `others` (set once, by the cluster). `groups`: the
    /// temporary groups of [`cross_relay_group_ids`], in order. With a
    /// `number` (below [`MAX_CLUSTER_RELAYS`]) this relay places its calls
    /// in that share of them, with call ids in a range of that number's
    /// own and this run's, so no two relays' calls share one; without one
    /// (every number taken) it only takes the other relays' calls, and its
    /// callers are told a callee elsewhere is unreachable.
    pub fn reach_other_relays(
        &self,
        others: Arc<dyn OtherRelays>,
        number: Option<u16>,
        groups: Vec<Arc<GroupShared>>,
    ) {
        let share = CROSS_RELAY_CALLS_PER_RELAY as usize;
        debug_assert_eq!(
            groups.len(),
            usize::from(MAX_CLUSTER_RELAYS) * share,
            "every relay's share"
        );
        let slots = groups.into_iter().map(Slot::new).collect();
        let number = number.filter(|&n| n < MAX_CLUSTER_RELAYS);
        let across = Across {
            relays: others,
            slots,
            places_calls: number.is_some(),
        };
        if self.across.set(across).is_err() {
            return;
        }
        if let Some(number) = number {
            let first = self.slots.len() + usize::from(number) * share;
            lock(&self.state).free_across = (first..first + share).rev().collect();
            self.next_call
                .store(first_call_id(number, now_ms()), Ordering::Relaxed);
        }
    }

    /// Whether this relay may call the other relays' terminals (it has a
    /// share of the groups for it).
    pub(super) fn places_calls_across(&self) -> bool {
        self.across.get().is_some_and(|across| across.places_calls)
    }

    /// The other relays, in a cluster.
    pub(super) fn other_relays(&self) -> Option<&Arc<dyn OtherRelays>> {
        self.across.get().map(|across| &across.relays)
    }

    /// The temporary group in `slot`.
    pub(super) fn slot(&self, slot: usize) -> &Slot {
        match slot.checked_sub(self.slots.len()) {
            None => &self.slots[slot],
            Some(across) => {
                &self
                    .across
                    .get()
                    .expect("a slot beyond this relay's own is a cluster's")
                    .slots[across]
            }
        }
    }

    /// The slot of temporary group `group`, if it is one.
    pub(super) fn slot_of(&self, group: u32) -> Option<usize> {
        if let Some(index) = group.checked_sub(CROSS_RELAY_CALL_GROUP_BASE) {
            let across = self.across.get()?;
            let index = usize::try_from(index).ok()?;
            return (index < across.slots.len()).then_some(self.slots.len() + index);
        }
        let index = usize::try_from(group.checked_sub(PRIVATE_CALL_GROUP_BASE)?).ok()?;
        (index < self.slots.len()).then_some(index)
    }

    /// Whether `terminal` is a connected party of the call using `group`: it may then
    /// request that group's floor as if it had joined it.
    pub fn is_party(&self, group: u32, terminal: u32) -> bool {
        let Some(slot) = self.slot_of(group) else {
            return false;
        };
        let state = lock(&self.state);
        state
            .by_terminal
            .get(&terminal)
            .and_then(|id| state.calls.get(id))
            .is_some_and(|call| call.answered_at_ms.is_some() && call.slot == slot)
    }

    /// Whether `group` is one of the temporary groups.
    pub fn is_call_group(&self, group: u32) -> bool {
        self.slot_of(group).is_some()
    }

    /// Calls up now (ringing or connected).
    pub fn active(&self) -> usize {
        lock(&self.state).calls.len()
    }

    /// The id of the temporary group in `slot`.
    pub(super) fn group_id(&self, slot: usize) -> u32 {
        self.slot(slot).group.id
    }
}

/// The call id before a clustered relay's first: its number, then when it
/// started (in 8 ms steps, 28 bits: 24 days), then 20 bits of calls. So
/// neither another relay's calls nor this relay's before a restart (which
/// the other relays may still hold) share an id with its calls, and ids
/// stay below 2^53 (the console's JavaScript reads them as numbers).
fn first_call_id(number: u16, started_at_ms: i64) -> u64 {
    let run = u64::try_from(started_at_ms / 8).unwrap_or(0) % (1 << 28);
    ((u64::from(number) + 1) << 48) | (run << 20)
}

/// Removes call `call_id` from the map if `which` holds for it, in one locked step, and
/// stops its no-answer timer; its group goes back to the pool with [`free`] once its
/// parties here have left it.
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
    if let Some(timer) = &call.ringing {
        timer.abort();
    }
    for terminal in [call.caller.terminal(), call.callee.terminal()] {
        if state.by_terminal.get(&terminal) == Some(&call_id) {
            state.by_terminal.remove(&terminal);
        }
    }
    Some(call)
}

/// Marks call `call_id` answered if it rings and `which` holds for it, and
/// stops its no-answer timer; its parties and slot.
pub(super) fn answer_if(
    calls: &PrivateCalls,
    call_id: u64,
    which: impl Fn(&Call) -> bool,
) -> Option<(Party, Party, usize)> {
    let mut state = lock(&calls.state);
    let call = state
        .calls
        .get_mut(&call_id)
        .filter(|call| call.answered_at_ms.is_none() && which(call))?;
    call.answered_at_ms = Some(now_ms());
    if let Some(timer) = call.ringing.take() {
        timer.abort();
    }
    Some((call.caller.clone(), call.callee.clone(), call.slot))
}

/// Returns a call's group to the pool, if the pool is this relay's (its
/// caller's relay keeps a call between relays).
pub(super) fn free(calls: &PrivateCalls, call: &Call) {
    if !call.kept_here() {
        return;
    }
    let mut state = lock(&calls.state);
    if call.slot < calls.slots.len() {
        state.free.push(call.slot);
    } else {
        state.free_across.push(call.slot);
    }
}

/// The calls' lock; poisoning is ignored (every change is one insert or remove).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_and_runs_hand_out_call_ids_apart() {
        let started = 1_796_000_000_000;
        let first = first_call_id(0, started);
        let other_relay = first_call_id(1, started);
        let restarted = first_call_id(0, started + 100);
        // A run's 2^20 calls never reach another relay's or run's ids.
        for other in [other_relay, restarted] {
            assert!(first + (1 << 20) <= other || other + (1 << 20) <= first);
        }
        assert!(first_call_id(MAX_CLUSTER_RELAYS - 1, i64::MAX) < 1 << 53);
    }
}
