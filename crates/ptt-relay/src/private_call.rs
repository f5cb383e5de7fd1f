//! Private calls: one terminal calls another, the callee answers, and the two talk with
//! ordinary floor control in a temporary group.
//!
//! The temporary groups are a pool started with the relay (`private-calls`, ids from
//! [`PRIVATE_CALL_GROUP_BASE`]): each has its own group task and floor like any talkgroup,
//! so voice, floor, recording and the call log need nothing special. A call holds one
//! from setup to hang-up. The calls' state is one small map behind a mutex, touched only
//! by control requests (setup, answer, hang-up, disconnect), never by voice.
//!
//! Who may call whom: a dispatcher anyone and anyone a dispatcher; otherwise two terminals
//! that share a group. An emergency private call pre-empts the callee's other call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ptt_proto::pb::{self, server_message::Body};

use crate::calllog::{PrivateCallOutcome, PrivateCallRecord, Record, now_ms};
use crate::directory::{GroupId, Membership, Role, TerminalId};
use crate::group::{Command, GroupShared};
use crate::link::Link;
use crate::relay::Shared;
use crate::{policy, wire};

/// The first temporary group id; directory group ids stay below it.
pub const PRIVATE_CALL_GROUP_BASE: u32 = crate::directory::FIRST_RESERVED_GROUP_ID;

/// How long a call rings before the caller is told nobody answered.
pub const NO_ANSWER: Duration = Duration::from_secs(30);

/// One call from setup to hang-up.
#[derive(Debug)]
struct Call {
    caller: u32,
    callee: u32,
    slot: usize,
    emergency: bool,
    started_at_ms: i64,
    /// Set when the callee accepted.
    answered_at_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Calls {
    free: Vec<usize>,
    calls: HashMap<u64, Call>,
    /// Each terminal's call (caller or callee): at most one.
    by_terminal: HashMap<u32, u64>,
}

/// The pool of temporary groups and the calls using them.
#[derive(Debug)]
pub struct PrivateCalls {
    slots: Vec<Arc<GroupShared>>,
    state: Mutex<Calls>,
    next_call: AtomicU64,
}

/// How a call ends, for both parties and the log.
#[derive(Debug, Clone, Copy)]
struct Ending {
    /// Told to the party that did not end it.
    peer: pb::PrivateCallEndReason,
    outcome: PrivateCallOutcome,
}

impl PrivateCalls {
    /// The pool over `slots`, the temporary groups (ids from the base, in order).
    pub fn new(slots: Vec<Arc<GroupShared>>) -> Self {
        let free = (0..slots.len()).rev().collect();
        Self {
            slots,
            state: Mutex::new(Calls {
                free,
                ..Calls::default()
            }),
            next_call: AtomicU64::new(0),
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

    /// Calls up now (ringing or connected).
    pub fn active(&self) -> usize {
        lock(&self.state).calls.len()
    }

    fn group_id(slot: usize) -> u32 {
        PRIVATE_CALL_GROUP_BASE + slot as u32
    }
}

/// `caller` asks to call `setup.callee_terminal_id`; answers request `id`.
pub async fn setup(shared: &Arc<Shared>, caller: &Arc<Link>, id: u64, setup: pb::PrivateCallSetup) {
    let calls = &shared.private_calls;
    let callee = setup.callee_terminal_id;
    let directory = &shared.directory;
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
        || share_a_group(shared, from.id, to.id);
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
            outcome: PrivateCallOutcome::Completed,
        };
        finish(shared, other, None, ending).await;
    }

    let call_id = calls.next_call.fetch_add(1, Ordering::Relaxed) + 1;
    let started_at_ms = now_ms();
    let callee_link = shared.sessions.get(&callee).map(|link| link.clone());
    let refusal = {
        let mut state = lock(&calls.state);
        if callee_link.is_none() {
            Err((
                pb::PrivateCallRejectReason::Offline,
                PrivateCallOutcome::Offline,
            ))
        } else if state.by_terminal.contains_key(&callee) {
            Err((pb::PrivateCallRejectReason::Busy, PrivateCallOutcome::Busy))
        } else if let Some(slot) = state.free.pop() {
            state.calls.insert(
                call_id,
                Call {
                    caller: caller.terminal,
                    callee,
                    slot,
                    emergency: setup.emergency,
                    started_at_ms,
                    answered_at_ms: None,
                },
            );
            state.by_terminal.insert(caller.terminal, call_id);
            state.by_terminal.insert(callee, call_id);
            Ok(slot)
        } else {
            tracing::warn!("every private-call group is in use; raise private-calls");
            Err((pb::PrivateCallRejectReason::Busy, PrivateCallOutcome::Busy))
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
    match refusal {
        Err((reason, outcome)) => {
            caller.send(id, Body::PrivateCallSetup(answer));
            caller.send(
                0,
                Body::PrivateCallReject(pb::PrivateCallReject {
                    call_id,
                    reason: reason.into(),
                }),
            );
            shared.log(Record::PrivateCall(PrivateCallRecord {
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
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(NO_ANSWER) => no_answer(&shared, call_id).await,
                    () = shared.shutdown.cancelled() => {}
                }
            });
        }
    }
}

/// The callee accepts call `call_id`: both parties join its group.
pub async fn accept(shared: &Shared, callee: &Arc<Link>, id: u64, call_id: u64) {
    let calls = &shared.private_calls;
    let accepted = {
        let mut state = lock(&calls.state);
        match state.calls.get_mut(&call_id) {
            Some(call) if call.callee == callee.terminal && call.answered_at_ms.is_none() => {
                call.answered_at_ms = Some(now_ms());
                Some((call.caller, call.slot))
            }
            _ => None,
        }
    };
    let Some((caller, slot)) = accepted else {
        return callee.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "no such call ringing here"),
        );
    };
    let group_id = PrivateCalls::group_id(slot);
    let group = calls.slots[slot].clone();
    callee.send(id, Body::Ack(pb::Ack {}));
    let caller_link = shared.sessions.get(&caller).map(|link| link.clone());
    if let Some(link) = &caller_link {
        link.send(
            0,
            Body::PrivateCallAccept(pb::PrivateCallAccept { call_id, group_id }),
        );
    }
    let name = format!(
        "Private call: {} – {}",
        shared.terminal_name(caller),
        callee.name
    );
    for link in caller_link.iter().chain([callee]) {
        join(shared, &group, link, &name).await;
    }
}

/// The callee rejects call `call_id` (or the caller withdraws it, as a hang-up).
pub async fn reject(shared: &Shared, link: &Arc<Link>, id: u64, reject: pb::PrivateCallReject) {
    let ringing_here = {
        let state = lock(&shared.private_calls.state);
        state
            .calls
            .get(&reject.call_id)
            .is_some_and(|call| call.callee == link.terminal && call.answered_at_ms.is_none())
    };
    if !ringing_here {
        return link.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "no such call ringing here"),
        );
    }
    let reason = match pb::PrivateCallRejectReason::try_from(reject.reason) {
        Ok(pb::PrivateCallRejectReason::Unspecified) | Err(_) => {
            pb::PrivateCallRejectReason::Declined
        }
        Ok(reason) => reason,
    };
    link.send(id, Body::Ack(pb::Ack {}));
    if let Some(call) = take(shared, reject.call_id) {
        if let Some(caller) = shared.sessions.get(&call.caller) {
            caller.send(
                0,
                Body::PrivateCallReject(pb::PrivateCallReject {
                    call_id: reject.call_id,
                    reason: reason.into(),
                }),
            );
        }
        free(shared, &call);
        log_call(shared, reject.call_id, &call, PrivateCallOutcome::Declined);
    }
}

/// A party hangs up call `call_id`.
pub async fn end(shared: &Shared, link: &Arc<Link>, id: u64, call_id: u64) {
    let party = {
        let state = lock(&shared.private_calls.state);
        state
            .calls
            .get(&call_id)
            .is_some_and(|call| call.caller == link.terminal || call.callee == link.terminal)
    };
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
    finish(shared, call_id, Some(link.terminal), ending).await;
}

/// `terminal`'s session ended: its call, if any, ends for the peer.
pub async fn disconnected(shared: &Shared, terminal: u32) {
    let call_id = lock(&shared.private_calls.state)
        .by_terminal
        .get(&terminal)
        .copied();
    if let Some(call_id) = call_id {
        let ending = Ending {
            peer: pb::PrivateCallEndReason::PeerDisconnected,
            outcome: PrivateCallOutcome::Disconnected,
        };
        finish(shared, call_id, Some(terminal), ending).await;
    }
}

/// Nobody answered in time: the caller hears so, the callee stops ringing.
async fn no_answer(shared: &Shared, call_id: u64) {
    let ringing = lock(&shared.private_calls.state)
        .calls
        .get(&call_id)
        .is_some_and(|call| call.answered_at_ms.is_none());
    if !ringing {
        return;
    }
    if let Some(call) = take(shared, call_id) {
        if let Some(caller) = shared.sessions.get(&call.caller) {
            caller.send(
                0,
                Body::PrivateCallReject(pb::PrivateCallReject {
                    call_id,
                    reason: pb::PrivateCallRejectReason::NoAnswer.into(),
                }),
            );
        }
        if let Some(callee) = shared.sessions.get(&call.callee) {
            callee.send(
                0,
                end_message(call_id, pb::PrivateCallEndReason::Unspecified),
            );
        }
        free(shared, &call);
        log_call(shared, call_id, &call, PrivateCallOutcome::NoAnswer);
    }
}

/// Ends call `call_id`: both parties leave its group, the party other than `by` (both
/// when `None`) is told why, the group returns to the pool and the call is logged.
async fn finish(shared: &Shared, call_id: u64, by: Option<u32>, ending: Ending) {
    let Some(call) = take(shared, call_id) else {
        return;
    };
    let group = shared.private_calls.slots[call.slot].clone();
    for terminal in [call.caller, call.callee] {
        let link = shared.sessions.get(&terminal).map(|link| link.clone());
        if let Some(link) = link {
            if call.answered_at_ms.is_some() {
                group
                    .command(Command::Leave {
                        terminal,
                        session: link.session,
                        disconnected: false,
                        request_id: 0,
                    })
                    .await;
            }
            if Some(terminal) != by {
                link.send(0, end_message(call_id, ending.peer));
            }
        }
    }
    free(shared, &call);
    let outcome = match (call.answered_at_ms, ending.outcome) {
        (None, PrivateCallOutcome::Completed) => PrivateCallOutcome::Cancelled,
        (_, outcome) => outcome,
    };
    log_call(shared, call_id, &call, outcome);
}

/// Removes call `call_id` from the map; its group goes back to the pool with
/// [`free`] once nobody is joined to it.
fn take(shared: &Shared, call_id: u64) -> Option<Call> {
    let mut state = lock(&shared.private_calls.state);
    let call = state.calls.remove(&call_id)?;
    for terminal in [call.caller, call.callee] {
        if state.by_terminal.get(&terminal) == Some(&call_id) {
            state.by_terminal.remove(&terminal);
        }
    }
    Some(call)
}

/// Returns a call's group to the pool.
fn free(shared: &Shared, call: &Call) {
    lock(&shared.private_calls.state).free.push(call.slot);
}

/// Joins one party to the call's group with its own priority cap.
async fn join(shared: &Shared, group: &Arc<GroupShared>, link: &Arc<Link>, name: &str) {
    let Some(terminal) = shared.directory.terminal(TerminalId(link.terminal)) else {
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

fn log_call(shared: &Shared, call_id: u64, call: &Call, outcome: PrivateCallOutcome) {
    shared.log(Record::PrivateCall(PrivateCallRecord {
        call_id,
        caller: TerminalId(call.caller),
        callee: TerminalId(call.callee),
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

/// Whether two terminals are members of one group (now, by any means).
fn share_a_group(shared: &Shared, a: TerminalId, b: TerminalId) -> bool {
    let groups_of_b: Vec<GroupId> = shared
        .roster
        .groups_of(b)
        .into_iter()
        .map(|(group, _)| group.id)
        .collect();
    shared
        .roster
        .groups_of(a)
        .into_iter()
        .any(|(group, _)| groups_of_b.contains(&group.id))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
