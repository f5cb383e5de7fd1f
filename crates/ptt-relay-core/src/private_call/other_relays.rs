//! The one thing private calls need of a cluster: where a callee that is not
//! here is.

/// Where a relay of a cluster finds the terminals logged in to the other
/// relays (set by the cluster): a callee there is told apart from one that
/// is offline.
pub trait OtherRelays: Send + Sync + std::fmt::Debug {
    /// The relay `terminal` is logged in to, if another relay of the cluster.
    fn relay_of(&self, terminal: u32) -> Option<String>;
}
