//! Ending a call: a party hangs up or its connection is lost (or an emergency call
//! pre-empts it); both parties leave its group and the group returns to the pool.

use std::sync::Arc;

use ptt_calllog::PrivateCallOutcome;
use ptt_proto::pb::{self, server_message::Body};

use ptt_cluster::CallNote;

use super::notes::tell_other_relay;
use super::pool::{Party, PrivateCalls, free, lock, take_if};
use super::report::{end_message, log_call};
use crate::group::Command;
use crate::link::Link;
use crate::wire;

/// How a call ends, for both parties and the log.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ending {
    /// Told to the party that did not end it.
    pub(super) peer: pb::PrivateCallEndReason,
    /// What the call log records.
    pub(super) outcome: PrivateCallOutcome,
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

/// Ends the call `terminal` is in, if any, for an emergency call to it.
pub(super) async fn preempt_call_of(calls: &PrivateCalls, terminal: u32) {
    let busy_with = lock(&calls.state).by_terminal.get(&terminal).copied();
    if let Some(other) = busy_with {
        let ending = Ending {
            peer: pb::PrivateCallEndReason::Preempted,
            outcome: PrivateCallOutcome::Preempted,
        };
        finish(calls, other, None, ending).await;
    }
}

/// Ends call `call_id`: both parties leave its group, the party other than `by` (both
/// when `None`) is told why, the group returns to the pool and the call is logged. In a
/// call between relays each relay does this for its own party, and the other relay is
/// told, unless `by` is its party (it told this one).
pub(super) async fn finish(calls: &PrivateCalls, call_id: u64, by: Option<u32>, ending: Ending) {
    let Some(call) = take_if(calls, call_id, |_| true) else {
        return;
    };
    let slot = calls.slot(call.slot);
    let parties = [&call.caller, &call.callee];
    {
        // After an answer's joins, if one is under way; each party's own
        // session leaves, connected or not.
        let _moving = slot.moving.lock().await;
        for link in parties.into_iter().filter_map(Party::link) {
            slot.group
                .command(Command::Leave {
                    terminal: link.terminal,
                    session: link.session,
                    disconnected: false,
                    request_id: 0,
                })
                .await;
        }
    }
    for party in parties {
        if Some(party.terminal()) != by {
            party.send(0, end_message(call_id, ending.peer));
        }
    }
    free(calls, &call);
    let outcome = match (call.answered_at_ms, ending.outcome) {
        (None, PrivateCallOutcome::Completed) => PrivateCallOutcome::Cancelled,
        (_, outcome) => outcome,
    };
    log_call(calls, call_id, &call, outcome);
    let told_by_other_relay = call
        .elsewhere()
        .is_some_and(|party| Some(party.terminal()) == by);
    if !told_by_other_relay {
        let note = CallNote::Ended {
            call_id,
            reason: ending.peer.into(),
        };
        tell_other_relay(calls, call_id, &call, note);
    }
}
