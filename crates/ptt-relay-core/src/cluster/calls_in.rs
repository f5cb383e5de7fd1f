//! Private calls between this relay's terminals and the other relays': the
//! notes this relay sends (`OtherRelays` for `private_call`) and those it
//! takes.

use std::sync::Arc;
use std::time::Duration;

use ptt_cluster::CallNote;

use super::link::ClusterLink;
use crate::private_call::other_relays::{OtherRelays, Told};
use crate::private_call::{PrivateCalls, check_calls_with_other_relays, heard};

/// How long a relay waits for another to answer a note about a call: a
/// terminal's request waits on it.
pub const CALL_NOTE_WITHIN: Duration = Duration::from_secs(1);

/// How often the calls between relays are checked with the other relay.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Pause before listening again when NATS would not.
const LISTEN_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// A callee logged in to another relay is found through the
/// announcements, and its relay told on the call bus.
impl OtherRelays for ClusterLink {
    fn relay_of(&self, terminal: u32) -> Option<String> {
        self.elsewhere.relay_of(terminal)
    }

    fn gone(&self, relay: &str) -> bool {
        self.elsewhere.gone(relay)
    }

    fn tell(&self, relay: &str, note: CallNote) -> Told {
        let bus = self.cluster.calls.clone();
        let relay = relay.to_owned();
        Box::pin(async move {
            match bus.tell(&relay, note, CALL_NOTE_WITHIN).await {
                Ok(reply) => Some(reply),
                Err(error) => {
                    tracing::warn!(%error, "a note about a private call went unanswered");
                    None
                }
            }
        })
    }
}

/// Takes the other relays' notes about calls between their terminals and
/// this relay's, one at a time in the order they come, and checks the calls
/// between relays every second, for as long as the relay runs.
pub async fn take_private_calls(cluster: Arc<ClusterLink>, calls: Arc<PrivateCalls>) {
    let notes = async {
        loop {
            match cluster.cluster.calls.serve().await {
                Ok(mut inbox) => {
                    while let Some(pending) = inbox.next().await {
                        let reply = heard(&calls, &pending.relay, pending.note.clone()).await;
                        if let Err(error) = pending.reply(reply).await {
                            tracing::debug!(%error, "a private-call note not answered");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot take the other relays' calls"),
            }
            tokio::time::sleep(LISTEN_AGAIN_AFTER).await;
        }
    };
    let checks = async {
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        loop {
            ticks.tick().await;
            check_calls_with_other_relays(&calls).await;
        }
    };
    tokio::join!(notes, checks);
}
