//! What a call's end leaves behind: the message a party is told and the call-log row.

use ptt_calllog::{PrivateCallOutcome, PrivateCallRecord, Record, now_ms};
use ptt_directory::{GroupId, TerminalId};
use ptt_proto::pb::{self, server_message::Body};

use super::pool::{Call, PrivateCalls};

/// Logs the end of `call` with `outcome`, if this relay keeps it (a call
/// between relays is logged by its caller's relay, and shared with the
/// cluster's call log from there).
pub(super) fn log_call(
    calls: &PrivateCalls,
    call_id: u64,
    call: &Call,
    outcome: PrivateCallOutcome,
) {
    if !call.kept_here() {
        return;
    }
    calls.log.log(Record::PrivateCall(PrivateCallRecord {
        call_id,
        caller: TerminalId(call.caller.terminal()),
        callee: TerminalId(call.callee.terminal()),
        group: GroupId(calls.group_id(call.slot)),
        emergency: call.emergency,
        outcome,
        started_at_ms: call.started_at_ms,
        answered_at_ms: call.answered_at_ms,
        ended_at_ms: now_ms(),
    }));
}

/// The `PrivateCallEnd` a party is told.
pub(super) fn end_message(call_id: u64, reason: pb::PrivateCallEndReason) -> Body {
    Body::PrivateCallEnd(pb::PrivateCallEnd {
        call_id,
        reason: reason.into(),
    })
}
