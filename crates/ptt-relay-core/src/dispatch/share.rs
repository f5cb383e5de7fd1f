//! Where this relay's zone logic changes go beyond it, in a cluster.

use std::fmt;

use ptt_calllog::RegroupRecord;

/// Where this relay's zone logic changes go beyond it: the other relays of
/// a cluster (the cluster module implements it).
pub trait RegroupShare: Send + Sync + fmt::Debug {
    /// Hands a batch of changes to the other relays. Must not wait.
    fn share(&self, changes: &[RegroupRecord]);
}
