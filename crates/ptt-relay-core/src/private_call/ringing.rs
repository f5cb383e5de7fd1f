//! A call ringing: the callee rung on its own relay, and the call given up
//! by the caller's relay when nobody answers in time.

use std::sync::Arc;
use std::time::Duration;

use ptt_calllog::PrivateCallOutcome;
use ptt_cluster::{CallNote, CallReply};
use ptt_proto::pb::{self, server_message::Body};

use super::notes::{tell, tell_other_relay};
use super::pool::{Call, PrivateCalls, free, lock, take_if};
use super::report::{end_message, log_call};

/// Gives up on call `call_id` once it has rung for `ringing` unanswered.
pub(super) fn ring_for(calls: &Arc<PrivateCalls>, call_id: u64, ringing: Duration) {
    let timer_calls = calls.clone();
    let timer = tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(ringing) => no_answer(&timer_calls, call_id).await,
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

/// Nobody answered in time: the caller hears so, the callee stops ringing
/// (told by its own relay, for a call between relays). Only the caller's
/// relay times a call.
async fn no_answer(calls: &PrivateCalls, call_id: u64) {
    let Some(call) = take_if(calls, call_id, |call| call.answered_at_ms.is_none()) else {
        return;
    };
    not_taken(
        calls,
        call_id,
        &call,
        pb::PrivateCallRejectReason::NoAnswer.into(),
    );
    call.callee.send(
        0,
        end_message(call_id, pb::PrivateCallEndReason::Unspecified),
    );
    let stop_ringing = CallNote::Ended {
        call_id,
        reason: pb::PrivateCallEndReason::Unspecified.into(),
    };
    tell_other_relay(calls, call_id, &call, stop_ringing);
}

/// Has `relay` ring the callee of the call `setup` placed here; false if it
/// does not ring it (refused or unreachable: the caller is told why and the
/// call is over; or already answered).
pub(super) async fn ring_elsewhere(
    calls: &PrivateCalls,
    relay: &str,
    setup: pb::PrivateCallSetup,
) -> bool {
    let call_id = setup.call_id;
    let note = CallNote::Ring {
        call_id,
        caller: setup.caller_terminal_id,
        caller_name: setup.caller_name,
        callee: setup.callee_terminal_id,
        group: setup.group_id,
        emergency: setup.emergency,
    };
    let (reason, may_ring) = match tell(calls, relay, note).await {
        Some(CallReply::Ringing) => return true,
        Some(CallReply::Refused { reason }) => (reason, false),
        answer => {
            tracing::warn!(%relay, ?answer, call_id, "the callee's relay did not ring it");
            (pb::PrivateCallRejectReason::OtherRelay.into(), true)
        }
    };
    // Accepted meanwhile (the relay's reply came late) or ended: nothing to
    // give up.
    let Some(call) = take_if(calls, call_id, |call| call.answered_at_ms.is_none()) else {
        return false;
    };
    not_taken(calls, call_id, &call, reason);
    if may_ring {
        // Should the callee ring after all (a reply that came too late), it
        // stops.
        let ended = CallNote::Ended {
            call_id,
            reason: pb::PrivateCallEndReason::Unspecified.into(),
        };
        tell_other_relay(calls, call_id, &call, ended);
    }
    false
}

/// The callee did not take `call` (taken out of the table), for `reason`:
/// the caller hears why, the group goes back and the call is logged.
pub(super) fn not_taken(calls: &PrivateCalls, call_id: u64, call: &Call, reason: i32) {
    call.caller.send(
        0,
        Body::PrivateCallReject(pb::PrivateCallReject { call_id, reason }),
    );
    free(calls, call);
    log_call(calls, call_id, call, rejected_outcome(reason));
}

/// What the call log records for a callee's refusal, by its reason.
pub(super) fn rejected_outcome(reason: i32) -> PrivateCallOutcome {
    match pb::PrivateCallRejectReason::try_from(reason) {
        Ok(pb::PrivateCallRejectReason::Busy) => PrivateCallOutcome::Busy,
        Ok(pb::PrivateCallRejectReason::NoAnswer) => PrivateCallOutcome::NoAnswer,
        Ok(pb::PrivateCallRejectReason::Offline) => PrivateCallOutcome::Offline,
        Ok(pb::PrivateCallRejectReason::OtherRelay) => PrivateCallOutcome::OtherRelay,
        _ => PrivateCallOutcome::Declined,
    }
}
