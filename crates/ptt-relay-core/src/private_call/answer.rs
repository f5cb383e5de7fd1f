//! The callee's answer: accepting joins both parties to the call's group, rejecting
//! frees it.

use std::sync::Arc;

use ptt_calllog::{PrivateCallOutcome, now_ms};
use ptt_proto::pb::{self, server_message::Body};

use super::join::join;
use super::pool::{PrivateCalls, free, lock, take_if};
use super::report::log_call;
use crate::link::Link;
use crate::wire;

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
