//! The callee's answer: accepting joins both parties to the call's group, rejecting
//! frees it.

use std::sync::Arc;

use ptt_calllog::PrivateCallOutcome;
use ptt_cluster::{CallNote, CallReply};
use ptt_proto::pb::{self, server_message::Body};

use super::hang_up::{Ending, finish};
use super::join::join;
use super::notes::{tell, tell_other_relay};
use super::pool::{Party, PrivateCalls, answer_if, lock, take_if};
use super::ringing::not_taken;
use crate::link::Link;
use crate::wire;

/// The callee accepts call `call_id`: both parties join its group.
pub async fn accept(calls: &PrivateCalls, callee: &Arc<Link>, id: u64, call_id: u64) {
    let accepted = answer_if(calls, call_id, |call| {
        call.callee
            .link()
            .is_some_and(|party| party.terminal == callee.terminal)
    });
    let Some((caller, party, slot)) = accepted else {
        return callee.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "no such call ringing here"),
        );
    };
    let group_id = calls.group_id(slot);
    let slot = calls.slot(slot);
    {
        let _moving = slot.moving.lock().await;
        // A hang-up or a lost connection may have ended the call meanwhile (its
        // leaves wait for this lock): then there is nothing to join.
        if !lock(&calls.state).calls.contains_key(&call_id) {
            return callee.send(
                id,
                wire::error(pb::ErrorReason::UnknownCall, "the call has ended"),
            );
        }
        let name = format!("Private call: {} – {}", caller.name(), party.name());
        for link in [&caller, &party].into_iter().filter_map(Party::link) {
            join(calls, &slot.group, link, &name).await;
        }
    }
    // The caller's relay joins the caller, unless the call ended there (it
    // is not waited on with the group's joins and leaves held: a hang-up
    // here meanwhile leaves as usual).
    if let Some(relay) = caller.relay() {
        let told = tell(calls, relay, CallNote::Accepted { call_id }).await;
        if told != Some(CallReply::Done) {
            let ending = Ending {
                peer: pb::PrivateCallEndReason::Unspecified,
                outcome: PrivateCallOutcome::Disconnected,
            };
            finish(calls, call_id, Some(callee.terminal), ending).await;
            return callee.send(
                id,
                wire::error(pb::ErrorReason::UnknownCall, "the call has ended"),
            );
        }
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
        call.callee
            .link()
            .is_some_and(|party| party.terminal == link.terminal)
            && call.answered_at_ms.is_none()
    });
    let Some(call) = call else {
        return link.send(
            id,
            wire::error(pb::ErrorReason::UnknownCall, "no such call ringing here"),
        );
    };
    // The reasons a callee may give; any other is a decline.
    let reason = match pb::PrivateCallRejectReason::try_from(reject.reason) {
        Ok(
            reason @ (pb::PrivateCallRejectReason::Busy | pb::PrivateCallRejectReason::Unsupported),
        ) => reason,
        _ => pb::PrivateCallRejectReason::Declined,
    };
    link.send(id, Body::Ack(pb::Ack {}));
    not_taken(calls, reject.call_id, &call, reason.into());
    let note = CallNote::Rejected {
        call_id: reject.call_id,
        reason: reason.into(),
    };
    tell_other_relay(calls, reject.call_id, &call, note);
}
