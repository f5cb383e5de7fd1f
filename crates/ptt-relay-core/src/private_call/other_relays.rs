//! What private calls need of a cluster: where a callee that is not here
//! is, and a way to tell its relay of the call.

use std::future::Future;
use std::pin::Pin;

use ptt_cluster::{CallNote, CallReply};

/// The other relay's reply to a note: `None` if it gave none (not running,
/// NATS away, no answer in time).
pub type Told = Pin<Box<dyn Future<Output = Option<CallReply>> + Send>>;

/// The other relays of a cluster, as private calls see them (set by the
/// cluster): a callee logged in to one of them is rung there.
pub trait OtherRelays: Send + Sync + std::fmt::Debug {
    /// The relay `terminal` is logged in to, if another relay of the cluster.
    fn relay_of(&self, terminal: u32) -> Option<String>;

    /// Whether `relay` has stopped announcing itself (dead or cut off):
    /// its calls with this relay's terminals are over.
    fn gone(&self, relay: &str) -> bool;

    /// Tells `relay` `note` about one of the calls between it and this
    /// relay.
    fn tell(&self, relay: &str, note: CallNote) -> Told;
}
