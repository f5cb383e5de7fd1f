//! Placing a call: who may call whom, taking a slot, and ringing the callee here or on
//! its relay.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ptt_calllog::{PrivateCallRecord, Record, now_ms};
use ptt_directory::{GroupId, Role, TerminalId};
use ptt_proto::pb::{self, server_message::Body};

use super::hang_up::preempt_call_of;
use super::pool::{CROSS_RELAY_CALLS_PER_RELAY, Call, Party, PrivateCalls, lock};
use super::ringing::{rejected_outcome, ring_elsewhere, ring_for};
use crate::link::Link;
use crate::wire;

/// How long a call rings before the caller is told nobody answered, unless the
/// relay's settings say otherwise (`private-call-answer-timeout`): long enough
/// to take a handheld out of a pocket, short enough that a caller does not
/// wait on a radio nobody carries.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

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
    if setup.emergency {
        preempt_call_of(calls, callee).await;
    }

    let call_id = calls.next_call.fetch_add(1, Ordering::Relaxed) + 1;
    let started_at_ms = now_ms();
    let callee_party = match calls.online.get(callee) {
        Some(link) => Some(Party::Here(link)),
        None => calls
            .other_relays()
            .and_then(|others| others.relay_of(callee))
            .map(|relay| Party::Elsewhere {
                terminal: callee,
                name: Arc::from(to.name.as_str()),
                relay: Arc::from(relay),
            }),
    };
    let placed = {
        let mut state = lock(&calls.state);
        let callee_free = !state.by_terminal.contains_key(&callee);
        if state.by_terminal.contains_key(&caller.terminal) {
            // A concurrent setup made this terminal a callee meanwhile.
            Err(None)
        } else if let (Some(party), true) = (callee_party.clone(), callee_free) {
            let within = matches!(party, Party::Here(_));
            let pool = if within {
                &mut state.free
            } else {
                &mut state.free_across
            };
            match pool.pop() {
                Some(slot) => {
                    state.calls.insert(
                        call_id,
                        Call {
                            caller: Party::Here(caller.clone()),
                            callee: party,
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
                None if within => {
                    tracing::warn!("every private-call group is in use; raise private-calls");
                    Err(Some(pb::PrivateCallRejectReason::Busy))
                }
                None if calls.places_calls_across() => {
                    tracing::warn!(
                        "this relay's {CROSS_RELAY_CALLS_PER_RELAY} calls to other relays' terminals are all up"
                    );
                    Err(Some(pb::PrivateCallRejectReason::Busy))
                }
                None => Err(Some(pb::PrivateCallRejectReason::OtherRelay)),
            }
        } else if callee_party.is_none() {
            Err(Some(pb::PrivateCallRejectReason::Offline))
        } else {
            Err(Some(pb::PrivateCallRejectReason::Busy))
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
        Err(Some(reason)) => {
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
                outcome: rejected_outcome(reason.into()),
                started_at_ms,
                answered_at_ms: None,
                ended_at_ms: started_at_ms,
            }));
        }
        Ok(slot) => {
            answer.group_id = calls.group_id(slot);
            caller.send(id, Body::PrivateCallSetup(answer.clone()));
            let rings = match callee_party {
                Some(Party::Here(link)) => {
                    link.send(0, Body::PrivateCallSetup(answer));
                    true
                }
                Some(Party::Elsewhere { relay, .. }) => ring_elsewhere(calls, &relay, answer).await,
                None => false,
            };
            if rings {
                ring_for(calls, call_id, calls.answer_timeout);
            }
        }
    }
}
