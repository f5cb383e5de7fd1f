//! Private calls: one terminal calls another, the callee answers, and the two talk with
//! ordinary floor control in a temporary group.
//!
//! The temporary groups are a pool started with the relay (`private-calls`, ids from
//! [`PRIVATE_CALL_GROUP_BASE`]): each has its own group task and floor like any talkgroup,
//! so voice, floor, recording and the call log need nothing special. A call holds one
//! from setup to hang-up. The calls' state is one small map behind a mutex, touched only
//! by control requests (setup, answer, hang-up, disconnect), never by voice.
//!
//! Joins and leaves of a call's group are sequenced per group (an async mutex per slot):
//! the answer's joins and the hang-up's leaves never interleave, so a slot goes back to
//! the pool only once both parties have left it, and a party's stored link (not whatever
//! session is current) is what leaves, so a lost connection leaves too.
//!
//! Who may call whom: a dispatcher anyone and anyone a dispatcher; otherwise two terminals
//! that share a group. An emergency private call pre-empts the callee's other call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ptt_proto::pb::{self, server_message::Body};

use crate::group::{Command, GroupShared};
use crate::link::Link;
use crate::log_sink::LogSink;
use crate::online::Online;
use crate::roster::Roster;
use crate::{policy, wire};
use ptt_calllog::{PrivateCallOutcome, PrivateCallRecord, Record, now_ms};
use ptt_directory::{Directory, GroupId, Membership, Role, TerminalId};
use tokio_util::sync::CancellationToken;

/// The first temporary group id; directory group ids stay below it.
pub const PRIVATE_CALL_GROUP_BASE: u32 = ptt_directory::FIRST_RESERVED_GROUP_ID;

/// How long a call rings before the caller is told nobody answered.
pub const NO_ANSWER: Duration = Duration::from_secs(30);

/// One call from setup to hang-up.
#[derive(Debug)]
struct Call {
    /// The parties' sessions at setup: a later session of either is not a party.
    caller: Arc<Link>,
    callee: Arc<Link>,
    slot: usize,
    emergency: bool,
    started_at_ms: i64,
    /// Set when the callee accepted.
    answered_at_ms: Option<i64>,
    /// Stops the no-answer timer once answered or ended.
    ringing: Option<tokio::task::AbortHandle>,
}

impl Call {
    fn is_party(&self, link: &Link) -> bool {
        [&self.caller, &self.callee]
            .iter()
            .any(|party| party.terminal == link.terminal && party.session == link.session)
    }
}

#[derive(Debug, Default)]
struct Calls {
    free: Vec<usize>,
    calls: HashMap<u64, Call>,
    /// Each terminal's call (caller or callee): at most one.
    by_terminal: HashMap<u32, u64>,
}

/// One temporary group and the lock that orders its joins and leaves.
#[derive(Debug)]
struct Slot {
    group: Arc<GroupShared>,
    moving: tokio::sync::Mutex<()>,
}

/// The pool of temporary groups and the calls using them.
#[derive(Debug)]
pub struct PrivateCalls {
    slots: Vec<Slot>,
    state: Mutex<Calls>,
    next_call: AtomicU64,
    /// Who may call whom, and the parties' rights in the call's group.
    directory: Arc<Directory>,
    /// Whether two terminals share a group.
    roster: Arc<Roster>,
    /// To reach the callee.
    online: Arc<Online>,
    /// Every call is logged when it ends.
    log: LogSink,
    /// Stops the no-answer timers at shutdown.
    shutdown: CancellationToken,
}

/// How a call ends, for both parties and the log.
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// Told to the party that did not end it.
    peer: pb::PrivateCallEndReason,
    outcome: PrivateCallOutcome,
}

impl PrivateCalls {
    /// The pool over `groups`, the temporary groups (ids from the base, in order).
    pub fn new(
        groups: Vec<Arc<GroupShared>>,
        directory: Arc<Directory>,
        roster: Arc<Roster>,
        online: Arc<Online>,
        log: LogSink,
        shutdown: CancellationToken,
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
        }
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

    fn group_id(slot: usize) -> u32 {
        PRIVATE_CALL_GROUP_BASE + slot as u32
    }
}

/// `caller` asks to call `setup.callee_terminal_id`; answers request `id`.
pub async fn setup(
    calls: &Arc<PrivateCalls>,
    caller: &Arc<Link>,
    id: u64,
    setup: pb::PrivateCallSetup,
) {
    let callee = setup.callee_terminal_id;
    let directory = &calls.directory;
    let (Some(from), Some(to)) = (
        directory.terminal(TerminalId(caller.terminal)),
        directory.terminal(TerminalId(callee)),
    ) else {
        return caller.send(
            id,
            wire::error(pb::ErrorReason::UnknownTerminal, "no such terminal"),
        );
    };
    if callee == caller.terminal {
        return caller.send(
            id,
            wire::error(pb::ErrorReason::Malformed, "a terminal cannot call itself"),
        );
    }
    let allowed = from.role == Role::Dispatcher
        || to.role == Role::Dispatcher
        || calls.roster.share_a_group(from.id, to.id);
    if !allowed {
        return caller.send(
            id,
            wire::error(
                pb::ErrorReason::Forbidden,
                "private calls only between terminals sharing a group, or with a dispatcher",
            ),
        );
    }
    if setup.emergency && !from.emergency {
        return caller.send(
            id,
            wire::error(pb::ErrorReason::Forbidden, "may not make emergency calls"),
        );
    }
    if lock(&calls.state)
        .by_terminal
        .contains_key(&caller.terminal)
    {
        return caller.send(
            id,
            wire::error(
                pb::ErrorReason::Forbidden,
                "already in a private call: end it first",
            ),
        );
    }
    // An emergency call takes the callee out of its other call first.
    let busy_with = lock(&calls.state).by_terminal.get(&callee).copied();
    if let (Some(other), true) = (busy_with, setup.emergency) {
        let ending = Ending {
            peer: pb::PrivateCallEndReason::Preempted,
            outcome: PrivateCallOutcome::Preempted,
        };
        finish(calls, other, None, ending).await;
    }

    let call_id = calls.next_call.fetch_add(1, Ordering::Relaxed) + 1;
    let started_at_ms = now_ms();
    let callee_link = calls.online.get(callee);
    let placed = {
        let mut state = lock(&calls.state);
        let callee_free = !state.by_terminal.contains_key(&callee);
        if state.by_terminal.contains_key(&caller.terminal) {
            // A concurrent setup made this terminal a callee meanwhile.
            Err(None)
        } else if let (Some(callee_link), true) = (callee_link.clone(), callee_free) {
            match state.free.pop() {
                Some(slot) => {
                    state.calls.insert(
                        call_id,
                        Call {
                            caller: caller.clone(),
                            callee: callee_link,
                            slot,
                            emergency: setup.emergency,
                            started_at_ms,
                            answered_at_ms: None,
                            ringing: None,
                        },
                    );
                    state.by_terminal.insert(caller.terminal, call_id);
                    state.by_terminal.insert(callee, call_id);
                    Ok(slot)
                }
                None => {
                    tracing::warn!("every private-call group is in use; raise private-calls");
                    Err(Some((
                        pb::PrivateCallRejectReason::Busy,
                        PrivateCallOutcome::Busy,
                    )))
                }
            }
        } else if callee_link.is_none() {
            Err(Some((
                pb::PrivateCallRejectReason::Offline,
                PrivateCallOutcome::Offline,
            )))
        } else {
            Err(Some((
                pb::PrivateCallRejectReason::Busy,
                PrivateCallOutcome::Busy,
            )))
        }
    };
    let mut answer = pb::PrivateCallSetup {
        call_id,
        caller_terminal_id: caller.terminal,
        caller_name: caller.name.to_string(),
        callee_terminal_id: callee,
        group_id: 0,
        emergency: setup.emergency,
    };
    match placed {
        Err(None) => caller.send(
            id,
            wire::error(
                pb::ErrorReason::Forbidden,
                "already in a private call: end it first",
            ),
        ),
        Err(Some((reason, outcome))) => {
            caller.send(id, Body::PrivateCallSetup(answer));
            caller.send(
                0,
                Body::PrivateCallReject(pb::PrivateCallReject {
                    call_id,
                    reason: reason.into(),
                }),
            );
            calls.log.log(Record::PrivateCall(PrivateCallRecord {
                call_id,
                caller: TerminalId(caller.terminal),
                callee: TerminalId(callee),
                group: GroupId(0),
                emergency: setup.emergency,
                outcome,
                started_at_ms,
                answered_at_ms: None,
                ended_at_ms: started_at_ms,
            }));
        }
        Ok(slot) => {
            answer.group_id = PrivateCalls::group_id(slot);
            caller.send(id, Body::PrivateCallSetup(answer.clone()));
            if let Some(link) = callee_link {
                link.send(0, Body::PrivateCallSetup(answer));
            }
            let timer_calls = calls.clone();
            let timer = tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(NO_ANSWER) => no_answer(&timer_calls, call_id),
                    () = timer_calls.shutdown.cancelled() => {}
                }
            });
            match lock(&calls.state).calls.get_mut(&call_id) {
                Some(call) if call.answered_at_ms.is_none() => {
                    call.ringing = Some(timer.abort_handle());
                }
                _ => timer.abort(),
            }
        }
    }
}

/// The callee accepts call `call_id`: both parties join its group.
pub async fn accept(calls: &PrivateCalls, callee: &Arc<Link>, id: u64, call_id: u64) {
    let accepted = {
        let mut state = lock(&calls.state);
        match state.calls.get_mut(&call_id) {
            Some(call)
                if call.callee.terminal == callee.terminal && call.answered_at_ms.is_none() =>
            {
                call.answered_at_ms = Some(now_ms());
                if let Some(timer) = call.ringing.take() {
                    timer.abort();
                }
                Some((call.caller.clone(), call.callee.clone(), call.slot))
            }
            _ => None,
        }
    };
    let Some((caller, party, slot)) = accepted else {
        return callee.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "no such call ringing here"),
        );
    };
    let group_id = PrivateCalls::group_id(slot);
    let slot = &calls.slots[slot];
    let _moving = slot.moving.lock().await;
    // A hang-up or a lost connection may have ended the call meanwhile (its
    // leaves wait for this lock): then there is nothing to join.
    if !lock(&calls.state).calls.contains_key(&call_id) {
        return callee.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "the call has ended"),
        );
    }
    let name = format!("Private call: {} – {}", caller.name, party.name);
    for link in [&caller, &party] {
        join(calls, &slot.group, link, &name).await;
    }
    callee.send(id, Body::Ack(pb::Ack {}));
    caller.send(
        0,
        Body::PrivateCallAccept(pb::PrivateCallAccept { call_id, group_id }),
    );
}

/// The callee rejects call `call_id`, with its reason (declined if none).
pub async fn reject(
    calls: &PrivateCalls,
    link: &Arc<Link>,
    id: u64,
    reject: pb::PrivateCallReject,
) {
    let call = take_if(calls, reject.call_id, |call| {
        call.callee.terminal == link.terminal && call.answered_at_ms.is_none()
    });
    let Some(call) = call else {
        return link.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "no such call ringing here"),
        );
    };
    if let Some(timer) = &call.ringing {
        timer.abort();
    }
    let (reason, outcome) = match pb::PrivateCallRejectReason::try_from(reject.reason) {
        Ok(pb::PrivateCallRejectReason::Busy) => {
            (pb::PrivateCallRejectReason::Busy, PrivateCallOutcome::Busy)
        }
        Ok(pb::PrivateCallRejectReason::Unsupported) => (
            pb::PrivateCallRejectReason::Unsupported,
            PrivateCallOutcome::Declined,
        ),
        _ => (
            pb::PrivateCallRejectReason::Declined,
            PrivateCallOutcome::Declined,
        ),
    };
    link.send(id, Body::Ack(pb::Ack {}));
    call.caller.send(
        0,
        Body::PrivateCallReject(pb::PrivateCallReject {
            call_id: reject.call_id,
            reason: reason.into(),
        }),
    );
    free(calls, &call);
    log_call(calls, reject.call_id, &call, outcome);
}

/// A party hangs up call `call_id` (the caller may also withdraw it while it rings).
pub async fn end(calls: &PrivateCalls, link: &Arc<Link>, id: u64, call_id: u64) {
    let party = lock(&calls.state)
        .calls
        .get(&call_id)
        .is_some_and(|call| call.is_party(link));
    if !party {
        return link.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "not a party of this call"),
        );
    }
    link.send(id, Body::Ack(pb::Ack {}));
    let ending = Ending {
        peer: pb::PrivateCallEndReason::Hangup,
        outcome: PrivateCallOutcome::Completed,
    };
    finish(calls, call_id, Some(link.terminal), ending).await;
}

/// The session `link` ended: its call, if any, ends for the peer. A call of a
/// newer session of the same terminal is not this session's.
pub async fn disconnected(calls: &PrivateCalls, link: &Link) {
    let call_id = {
        let state = lock(&calls.state);
        state
            .by_terminal
            .get(&link.terminal)
            .copied()
            .filter(|id| state.calls.get(id).is_some_and(|call| call.is_party(link)))
    };
    if let Some(call_id) = call_id {
        let ending = Ending {
            peer: pb::PrivateCallEndReason::PeerDisconnected,
            outcome: PrivateCallOutcome::Disconnected,
        };
        finish(calls, call_id, Some(link.terminal), ending).await;
    }
}

/// Nobody answered in time: the caller hears so, the callee stops ringing.
fn no_answer(calls: &PrivateCalls, call_id: u64) {
    let Some(call) = take_if(calls, call_id, |call| call.answered_at_ms.is_none()) else {
        return;
    };
    call.caller.send(
        0,
        Body::PrivateCallReject(pb::PrivateCallReject {
            call_id,
            reason: pb::PrivateCallRejectReason::NoAnswer.into(),
        }),
    );
    call.callee.send(
        0,
        end_message(call_id, pb::PrivateCallEndReason::Unspecified),
    );
    free(calls, &call);
    log_call(calls, call_id, &call, PrivateCallOutcome::NoAnswer);
}

/// Ends call `call_id`: both parties leave its group, the party other than `by` (both
/// when `None`) is told why, the group returns to the pool and the call is logged.
async fn finish(calls: &PrivateCalls, call_id: u64, by: Option<u32>, ending: Ending) {
    let Some(call) = take_if(calls, call_id, |_| true) else {
        return;
    };
    if let Some(timer) = &call.ringing {
        timer.abort();
    }
    let slot = &calls.slots[call.slot];
    {
        // After an answer's joins, if one is under way; each party's own
        // session leaves, connected or not.
        let _moving = slot.moving.lock().await;
        for party in [&call.caller, &call.callee] {
            slot.group
                .command(Command::Leave {
                    terminal: party.terminal,
                    session: party.session,
                    disconnected: false,
                    request_id: 0,
                })
                .await;
        }
    }
    for party in [&call.caller, &call.callee] {
        if Some(party.terminal) != by {
            party.send(0, end_message(call_id, ending.peer));
        }
    }
    free(calls, &call);
    let outcome = match (call.answered_at_ms, ending.outcome) {
        (None, PrivateCallOutcome::Completed) => PrivateCallOutcome::Cancelled,
        (_, outcome) => outcome,
    };
    log_call(calls, call_id, &call, outcome);
}

/// Removes call `call_id` from the map if `which` holds for it, in one locked step; its
/// group goes back to the pool with [`free`] once nobody is joined to it.
fn take_if(calls: &PrivateCalls, call_id: u64, which: impl Fn(&Call) -> bool) -> Option<Call> {
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
fn free(calls: &PrivateCalls, call: &Call) {
    lock(&calls.state).free.push(call.slot);
}

/// Joins one party to the call's group with its own priority cap.
async fn join(calls: &PrivateCalls, group: &Arc<GroupShared>, link: &Arc<Link>, name: &str) {
    let Some(terminal) = calls.directory.terminal(TerminalId(link.terminal)) else {
        return;
    };
    let membership = Membership {
        terminal: terminal.id,
        listen: true,
        talk: true,
        max_priority: terminal.max_priority,
    };
    let rights = policy::member_rights(terminal, &membership);
    let info = pb::GroupInfo {
        group_id: group.id,
        name: name.to_owned(),
        rights: Some(pb::GroupRights {
            listen: true,
            talk: true,
            max_priority: wire::priority(rights.max_priority).into(),
            preempt: rights.preemptive,
            broadcast: false,
            dispatch: terminal.role == Role::Dispatcher,
        }),
        joined: true,
        dynamic: true,
    };
    group
        .command(Command::Join {
            link: link.clone(),
            rights,
            info: info.clone(),
            request_id: 0,
        })
        .await;
    // Told after the join is queued, so the party's first floor request
    // reaches the group's task after it.
    link.send(
        0,
        Body::JoinOk(pb::JoinOk {
            group: Some(info),
            floor: None,
            emergency: None,
        }),
    );
}

fn log_call(calls: &PrivateCalls, call_id: u64, call: &Call, outcome: PrivateCallOutcome) {
    calls.log.log(Record::PrivateCall(PrivateCallRecord {
        call_id,
        caller: TerminalId(call.caller.terminal),
        callee: TerminalId(call.callee.terminal),
        group: GroupId(PrivateCalls::group_id(call.slot)),
        emergency: call.emergency,
        outcome,
        started_at_ms: call.started_at_ms,
        answered_at_ms: call.answered_at_ms,
        ended_at_ms: now_ms(),
    }));
}

fn end_message(call_id: u64, reason: pb::PrivateCallEndReason) -> Body {
    Body::PrivateCallEnd(pb::PrivateCallEnd {
        call_id,
        reason: reason.into(),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
