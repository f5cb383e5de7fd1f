//! Who decides a group's floor, from this relay's side: the state a group
//! task keeps for it (what it does with it is in `seat`).

use std::collections::HashMap;
use std::time::Instant;

use ptt_cluster::HeldFloor;
use ptt_proto::pb;
use tokio::task::AbortHandle;

use super::member::RemoteMember;

/// Who decides the group's floor, from this relay's side.
#[derive(Debug)]
pub(super) enum Seat {
    /// No cluster: this relay decides, as it always has.
    Alone,
    /// Another relay decides (or nobody yet): this relay follows.
    Following(Following),
    /// This relay holds the lease and decides for every relay.
    Owning(Owning),
    /// NATS is out of reach: this relay decides for its own terminals only,
    /// as a radio site cut off from its core keeps its local calls going
    /// (site trunking), until it is back in the cluster with the floor
    /// idle.
    Isolated,
}

/// What a follower keeps of the owner's news.
#[derive(Debug)]
pub(super) struct Following {
    /// The highest fencing token heard: news of a former owner is ignored.
    pub(super) token: u64,
    /// When the owner last said anything.
    pub(super) heard_at: Instant,
    /// Until when the owner said it may grant (its lease's deadline as of
    /// its latest news): an open gate closes then unless newer news came,
    /// so it is closed before any other relay can own the floor.
    pub(super) gate_until: Instant,
    /// The holder's announcement, for a member joining mid-burst.
    pub(super) taken: Option<pb::FloorTaken>,
}

impl Following {
    pub(super) fn new(token: u64) -> Self {
        let now = Instant::now();
        Self {
            token,
            heard_at: now,
            gate_until: now,
            taken: None,
        }
    }
}

/// What the owner keeps.
#[derive(Debug)]
pub(super) struct Owning {
    /// The lease, renewed in the background.
    pub(super) held: HeldFloor,
    /// The task taking the other relays' calls.
    pub(super) calls: AbortHandle,
    /// The terminals of other relays seated at the arbiter.
    pub(super) remote: HashMap<u32, RemoteMember>,
    /// When the gate is next re-announced while someone talks.
    pub(super) refresh_at: Instant,
    /// When the remote members' relays were last looked at.
    pub(super) members_checked_at: Instant,
}

impl Drop for Owning {
    fn drop(&mut self) {
        self.calls.abort();
    }
}

/// The subscriptions a group keeps while it has members here (or decides).
#[derive(Debug, Default)]
pub(super) struct Taps {
    /// The owner's news, handed to the group's task.
    pub(super) news: Option<AbortHandle>,
    /// The other relays' voice, fanned out here.
    pub(super) voice: Option<AbortHandle>,
}

impl Drop for Taps {
    fn drop(&mut self) {
        for tap in [self.news.take(), self.voice.take()].into_iter().flatten() {
            tap.abort();
        }
    }
}

impl Seat {
    /// Where a group starts: deciding alone without a cluster, following
    /// (nobody known to own it yet) in one.
    pub(super) fn first(clustered: bool) -> Self {
        if clustered {
            Seat::Following(Following::new(0))
        } else {
            Seat::Alone
        }
    }
}
