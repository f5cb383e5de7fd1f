//! Calls between terminals of two relays of a cluster. Each relay has the
//! call in its own table, with the other relay's terminal as a
//! [`Party::Elsewhere`]: the caller's relay keeps the call (the temporary
//! group is one of its share, its timer gives up ringing, it logs the
//! call), the callee's relay rings the callee and takes its answer. Each
//! tells the other what its own terminal did ([`CallNote`]), and does for
//! its own terminal what the other tells it. The call's group is an
//! ordinary group of the cluster on both relays, so its floor and voice
//! need nothing of this module.

use std::sync::Arc;

use ptt_calllog::{PrivateCallOutcome, now_ms};
use ptt_cluster::{CallNote, CallReply};
use ptt_proto::pb::{self, server_message::Body};

use super::hang_up::{Ending, finish, preempt_call_of};
use super::join::join;
use super::pool::{Call, Party, PrivateCalls, answer_if, lock, take_if};
use super::ringing::not_taken;

/// Does what another relay, `relay`, tells of a call between it and this
/// relay, and says how it went.
pub async fn heard(calls: &PrivateCalls, relay: &str, note: CallNote) -> CallReply {
    match note {
        CallNote::Ring {
            call_id,
            caller,
            caller_name,
            callee,
            group,
            emergency,
        } => {
            let setup = pb::PrivateCallSetup {
                call_id,
                caller_terminal_id: caller,
                caller_name,
                callee_terminal_id: callee,
                group_id: group,
                emergency,
            };
            ring_here(calls, relay, setup).await
        }
        CallNote::Accepted { call_id } => accepted_elsewhere(calls, relay, call_id).await,
        CallNote::Rejected { call_id, reason } => rejected_elsewhere(calls, relay, call_id, reason),
        CallNote::Ended { call_id, reason } => {
            let Some(party) = party_at(calls, call_id, relay) else {
                return CallReply::UnknownCall;
            };
            let peer = pb::PrivateCallEndReason::try_from(reason)
                .unwrap_or(pb::PrivateCallEndReason::Unspecified);
            let outcome = match peer {
                pb::PrivateCallEndReason::Hangup | pb::PrivateCallEndReason::Inactivity => {
                    PrivateCallOutcome::Completed
                }
                pb::PrivateCallEndReason::Preempted => PrivateCallOutcome::Preempted,
                _ => PrivateCallOutcome::Disconnected,
            };
            finish(calls, call_id, Some(party), Ending { peer, outcome }).await;
            CallReply::Done
        }
        CallNote::Held { call_id } => match party_at(calls, call_id, relay) {
            Some(_) => CallReply::Done,
            None => CallReply::UnknownCall,
        },
    }
}

/// The party of call `call_id` that is a terminal of `relay`, if the call
/// is here and between this relay and that one.
fn party_at(calls: &PrivateCalls, call_id: u64, relay: &str) -> Option<u32> {
    let state = lock(&calls.state);
    let party = state.calls.get(&call_id)?.elsewhere()?;
    party.is_of(relay).then(|| party.terminal())
}

/// Rings this relay's terminal for another relay's caller.
async fn ring_here(calls: &PrivateCalls, relay: &str, setup: pb::PrivateCallSetup) -> CallReply {
    let refused = |reason: pb::PrivateCallRejectReason| CallReply::Refused {
        reason: reason.into(),
    };
    let (call_id, callee) = (setup.call_id, setup.callee_terminal_id);
    let Some(link) = calls.online.get(callee) else {
        return refused(pb::PrivateCallRejectReason::Offline);
    };
    let Some(slot) = calls
        .slot_of(setup.group_id)
        .filter(|&slot| slot >= calls.slots.len())
    else {
        return refused(pb::PrivateCallRejectReason::Unsupported);
    };
    // The caller's relay hands out only slots it holds no call in: a call
    // kept here in this one is a leftover of that relay (ended there
    // unheard, or before a restart). It ends before anyone joins the slot.
    let leftover = lock(&calls.state)
        .calls
        .iter()
        .find(|(_, call)| call.slot == slot && call.caller.is_of(relay))
        .map(|(&id, call)| (id, call.caller.terminal()));
    if let Some((leftover, party)) = leftover {
        finish(calls, leftover, Some(party), lost_peer()).await;
    }
    if setup.emergency {
        preempt_call_of(calls, callee).await;
    }
    {
        let mut state = lock(&calls.state);
        if state.by_terminal.contains_key(&callee) || state.calls.contains_key(&call_id) {
            return refused(pb::PrivateCallRejectReason::Busy);
        }
        state.calls.insert(
            call_id,
            Call {
                caller: Party::Elsewhere {
                    terminal: setup.caller_terminal_id,
                    name: Arc::from(setup.caller_name.as_str()),
                    relay: Arc::from(relay),
                },
                callee: Party::Here(link.clone()),
                slot,
                emergency: setup.emergency,
                started_at_ms: now_ms(),
                answered_at_ms: None,
                ringing: None,
            },
        );
        state.by_terminal.insert(callee, call_id);
    }
    // The caller's relay times the call; should it fall silent, the checks
    // (`check_calls_with_other_relays`) end it here.
    link.send(0, Body::PrivateCallSetup(setup));
    CallReply::Ringing
}

/// Another relay's callee accepted one of this relay's calls: the caller
/// joins the call's group.
async fn accepted_elsewhere(calls: &PrivateCalls, relay: &str, call_id: u64) -> CallReply {
    let accepted = answer_if(calls, call_id, |call| call.callee.is_of(relay));
    let Some((Party::Here(caller), callee, slot)) = accepted else {
        return CallReply::UnknownCall;
    };
    let group_id = calls.group_id(slot);
    let slot = calls.slot(slot);
    let _moving = slot.moving.lock().await;
    if !lock(&calls.state).calls.contains_key(&call_id) {
        return CallReply::UnknownCall;
    }
    let name = format!("Private call: {} – {}", caller.name, callee.name());
    join(calls, &slot.group, &caller, &name).await;
    caller.send(
        0,
        Body::PrivateCallAccept(pb::PrivateCallAccept { call_id, group_id }),
    );
    CallReply::Done
}

/// Another relay's callee did not take one of this relay's calls.
fn rejected_elsewhere(calls: &PrivateCalls, relay: &str, call_id: u64, reason: i32) -> CallReply {
    let call = take_if(calls, call_id, |call| {
        call.callee.is_of(relay) && call.answered_at_ms.is_none()
    });
    let Some(call) = call else {
        return CallReply::UnknownCall;
    };
    not_taken(calls, call_id, &call, reason);
    CallReply::Done
}

/// How old a call must be before its other relay is asked whether it still
/// has it: by then the callee's relay has had its `Ring` (the caller's
/// relay waits at most a second for it).
const CHECK_AFTER_MS: i64 = 2_000;

/// Ends the calls between relays that the other relay no longer has: it
/// stopped announcing itself (dead or cut off for 3 s), or it says it has
/// no such call (it ended it and the note was lost, or it restarted). The
/// party there is taken as lost. Run every second by the cluster.
pub async fn check_calls_with_other_relays(calls: &PrivateCalls) {
    let Some(others) = calls.other_relays() else {
        return;
    };
    let between: Vec<(u64, u32, Arc<str>, i64)> = lock(&calls.state)
        .calls
        .iter()
        .filter_map(|(&call_id, call)| {
            let party = call.elsewhere()?;
            let relay = party.relay()?.clone();
            Some((call_id, party.terminal(), relay, call.started_at_ms))
        })
        .collect();
    for (call_id, party, relay, started_at_ms) in between {
        let gone = others.gone(&relay);
        let unheard = !gone
            && now_ms() - started_at_ms >= CHECK_AFTER_MS
            && others.tell(&relay, CallNote::Held { call_id }).await
                == Some(CallReply::UnknownCall);
        if gone || unheard {
            tracing::info!(call_id, %relay, gone, "a private call's other relay no longer has it: it ends");
            finish(calls, call_id, Some(party), lost_peer()).await;
        }
    }
}

/// How a call ends whose other party's relay is gone or no longer has it.
fn lost_peer() -> Ending {
    Ending {
        peer: pb::PrivateCallEndReason::PeerDisconnected,
        outcome: PrivateCallOutcome::Disconnected,
    }
}
