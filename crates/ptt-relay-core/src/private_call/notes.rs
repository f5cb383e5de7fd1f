//! Telling the other relay of a call between relays what happened here.

use ptt_cluster::{CallNote, CallReply};

use super::pool::{Call, PrivateCalls};

/// Tells `relay` `note`; its reply, if it gave one.
pub(super) async fn tell(calls: &PrivateCalls, relay: &str, note: CallNote) -> Option<CallReply> {
    calls.other_relays()?.tell(relay, note).await
}

/// Tells the relay of `call`'s other party `note` (that the call is over
/// here), if the call is between relays; returns at once. Nothing waits
/// for the reply, so no terminal's request and no other relay's note waits
/// on a third relay; should the note be lost, the other relay learns it
/// from its next `Held` question.
pub(super) fn tell_other_relay(calls: &PrivateCalls, call_id: u64, call: &Call, note: CallNote) {
    let (Some(relay), Some(others)) = (call.other_relay(), calls.other_relays()) else {
        return;
    };
    let told = others.tell(relay, note);
    let relay = relay.clone();
    tokio::spawn(async move {
        if told.await.is_none() {
            tracing::warn!(%relay, call_id, "another relay was not told a private call is over");
        }
    });
}
