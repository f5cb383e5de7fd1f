//! Every group of the relay by id, fixed at start: the directory's groups and the pool of
//! private-call groups, with the two subsets the relay addresses as a whole (the
//! control room, and the groups an all-call covers).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::shared::GroupShared;

/// Where the control room's messages go beyond this relay: the other relays'
/// dispatchers, in a cluster (the cluster module implements it, so groups
/// know nothing of NATS).
pub trait ControlRoomShare: Send + Sync + fmt::Debug {
    /// Hands one message for the dispatchers (about `about_group`, 0 for
    /// none) to the other relays. Must not wait.
    fn share(&self, about_group: u32, frame: &Bytes);
}

/// The relay's groups. Built once at start, then only read.
#[derive(Debug, Default)]
pub struct Groups {
    by_id: HashMap<u32, Arc<GroupShared>>,
    control_room: Vec<Arc<GroupShared>>,
    all_call: Vec<Arc<GroupShared>>,
    /// The other relays' control rooms, once the relay is in a cluster.
    share: OnceLock<Arc<dyn ControlRoomShare>>,
}

impl Groups {
    /// Adds `group`, also to the control room and the all-call groups when it belongs
    /// there.
    pub fn insert(&mut self, group: Arc<GroupShared>, control_room: bool, all_call: bool) {
        if control_room {
            self.control_room.push(group.clone());
        }
        if all_call {
            self.all_call.push(group.clone());
        }
        self.by_id.insert(group.id, group);
    }

    /// Shares every later control-room message with `share` too (set once,
    /// when the relay has joined its cluster).
    pub fn share_control_room_with(&self, share: Arc<dyn ControlRoomShare>) {
        let _ = self.share.set(share);
    }

    /// The group with id `id`.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Arc<GroupShared>> {
        self.by_id.get(&id)
    }

    /// Every group, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<GroupShared>> {
        self.by_id.values()
    }

    /// The control-room groups (whose listeners are the dispatchers online).
    pub fn control_room(&self) -> &[Arc<GroupShared>] {
        &self.control_room
    }

    /// The groups a dispatcher's all-call covers.
    #[inline]
    pub fn all_call(&self) -> &[Arc<GroupShared>] {
        &self.all_call
    }

    /// Sends a framed event once to every dispatcher joined to a control-room group,
    /// except those that hear the group the event is about (`about_group`, 0 for none):
    /// its listeners were already told. In a cluster, the other relays' dispatchers
    /// are told too.
    pub fn notify_control_room(&self, about_group: u32, frame: &Bytes) {
        self.tell_control_room(about_group, None, frame);
        if let Some(share) = self.share.get() {
            share.share(about_group, frame);
        }
    }

    /// [`Groups::notify_control_room`] for an event `told` (a terminal of
    /// this relay) was told of directly, as an alert's sender is of its
    /// tally.
    pub fn notify_control_room_but(&self, about_group: u32, told: u32, frame: &Bytes) {
        self.tell_control_room(about_group, Some(told), frame);
        if let Some(share) = self.share.get() {
            share.share(about_group, frame);
        }
    }

    /// [`Groups::notify_control_room`] for this relay's dispatchers only:
    /// what another relay of the cluster told its own.
    pub fn notify_control_room_here(&self, about_group: u32, frame: &Bytes) {
        self.tell_control_room(about_group, None, frame);
    }

    /// Sends `frame` once to every dispatcher of this relay joined to a
    /// control-room group, except the listeners of `about_group` and `told`.
    fn tell_control_room(&self, about_group: u32, told: Option<u32>, frame: &Bytes) {
        let mut told: HashSet<u32> = told.into_iter().collect();
        if let Some(group) = self.get(about_group) {
            told.extend(group.listeners().iter().map(|link| link.terminal));
        }
        for group in &self.control_room {
            for link in group.listeners().iter() {
                if told.insert(link.terminal) {
                    link.send_frame(frame.clone());
                }
            }
        }
    }
}
