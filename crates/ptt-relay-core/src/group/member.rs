//! A member of a group as the task deciding its floor sees it: a session on
//! this relay, or (while this relay owns the group's floor in a cluster) a
//! session on another relay, reached through the group's floor news.

use std::sync::Arc;

use ptt_cluster::{Addressee, FloorNews};
use ptt_proto::pb::server_message::Body;

use crate::cluster::link::ClusterLink;
use crate::link::{self, Link};

/// Whom an answer or event goes to.
#[derive(Debug, Clone)]
pub(super) enum Member {
    /// A session on this relay.
    Local(Arc<Link>),
    /// A session on another relay of the cluster.
    Remote(RemoteMember),
}

/// A terminal of another relay, seated at this owner's arbiter.
#[derive(Debug, Clone)]
pub(super) struct RemoteMember {
    /// The terminal and its session on its relay.
    pub(super) at: Addressee,
    /// That relay's id.
    pub(super) relay: Arc<str>,
    /// The group.
    pub(super) group: u32,
    /// The owner's fencing token, on everything it tells the terminal.
    pub(super) token: u64,
    /// This relay's way to the others.
    pub(super) cluster: Arc<ClusterLink>,
}

impl Member {
    /// The member's terminal.
    pub(super) fn terminal(&self) -> u32 {
        match self {
            Member::Local(link) => link.terminal,
            Member::Remote(remote) => remote.at.terminal,
        }
    }

    /// Sends `body` as the answer to `request_id` (0: an event).
    pub(super) fn send(&self, request_id: u64, body: Body) {
        match self {
            Member::Local(link) => link.send(request_id, body),
            Member::Remote(remote) => remote.cluster.offer_news(
                remote.group,
                FloorNews {
                    relay: remote.cluster.relay().to_owned(),
                    token: remote.token,
                    gate: None,
                    valid_ms: None,
                    to: Some(remote.at),
                    message: link::frame(request_id, body).to_vec(),
                    taken: Vec::new(),
                },
            ),
        }
    }
}
