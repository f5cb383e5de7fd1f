//! Telling the other relay of a call between relays what happened here.

use ptt_cluster::{CallNote, CallReply};

use super::pool::{Call, PrivateCalls};

/// Tells `relay` `note`; its reply, if it gave one.
pub(super) async fn tell(calls: &PrivateCalls, relay: &str, note: CallNote) -> Option<CallReply> {
    calls.other_relays()?.tell(relay, note).await
}

/// Tells the relay of `call`'s other party `note`, if the call is between
/// relays.
pub(super) async fn tell_other_relay(calls: &PrivateCalls, call: &Call, note: CallNote) {
    if let Some(relay) = call.other_relay()
        && tell(calls, relay, note).await.is_none()
    {
        tracing::warn!(%relay, "another relay was not told of a private call's end");
    }
}
