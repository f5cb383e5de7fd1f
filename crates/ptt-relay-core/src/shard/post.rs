//! The queues between shards: a frame received on one shard, handed to the
//! others that have listeners of its group.
//!
//! Each shard has one bounded inbox. Posting never waits: a full inbox
//! drops the frame for that shard's listeners (counted as
//! `shard_handover_dropped`), as a full datagram queue drops it for one
//! listener, and the talker's shard goes on. The receiving shard drains its
//! inbox in batches, so a busy talker shard wakes it once per batch rather
//! than once per frame and listener.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::group::GroupShared;

/// Frames a shard's inbox holds: 100 groups' worth of 20 ms frames, five
/// times over. A shard that falls that far behind is better off dropping.
pub const INBOX_FRAMES: usize = 512;

/// One frame for another shard's listeners of a group.
#[derive(Debug)]
pub struct Handover {
    /// The group whose listeners get it.
    pub group: Arc<GroupShared>,
    /// The frame, stamped once on the talker's shard.
    pub frame: Bytes,
    /// Who sent it: never sent back to them.
    pub talker: u32,
    /// For an all-call frame, the token each listener claims so that a
    /// member of several all-call groups hears it once.
    pub all_call: Option<u64>,
    /// When the talker's shard read the datagram: the receiving shard counts
    /// its forward latency from there.
    pub received: Instant,
}

/// The inboxes of every shard, by shard index. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShardPosts {
    inboxes: Arc<[mpsc::Sender<Handover>]>,
}

impl ShardPosts {
    /// The inboxes of `shards` shards, and their receiving ends in shard order.
    pub fn new(shards: usize) -> (Self, Vec<mpsc::Receiver<Handover>>) {
        let (senders, receivers) = (0..shards).map(|_| mpsc::channel(INBOX_FRAMES)).unzip();
        let senders: Vec<_> = senders;
        (
            Self {
                inboxes: senders.into(),
            },
            receivers,
        )
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.inboxes.len()
    }

    /// Posts `handover` to shard `shard`'s inbox; false if it is full or
    /// gone (the relay is stopping), and the frame is dropped for that shard.
    pub fn post(&self, shard: usize, handover: Handover) -> bool {
        self.inboxes
            .get(shard)
            .is_some_and(|inbox| inbox.try_send(handover).is_ok())
    }
}
