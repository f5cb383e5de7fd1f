//! What sessions and the admin API ask of a group's task, and which answer a
//! floor-changing request expects.

use std::sync::Arc;

use ptt_floor::{MemberRights, Priority, RequestKind};
use ptt_proto::pb;

use crate::link::Link;

/// Longest `EmergencyDeclare.text` kept, in bytes (as a status text); a
/// longer one is cut at a character boundary, never refused: an emergency
/// is not turned down for its wording.
pub const MAX_EMERGENCY_TEXT: usize = 1024;

/// What a session asks of a group's task.
#[derive(Debug)]
pub enum Command {
    /// Start hearing the group (answered with `JoinOk`).
    Join {
        /// The terminal's link.
        link: Arc<Link>,
        /// Its floor rights in this group.
        rights: MemberRights,
        /// The group as this terminal sees it, for the answer.
        info: pb::GroupInfo,
        /// The request to answer; 0 for an automatic join at log-in.
        request_id: u64,
    },
    /// Stop hearing the group; withdraws requests and frees a held floor.
    Leave {
        /// The terminal.
        terminal: u32,
        /// Its session: a leave from a replaced session is ignored.
        session: u64,
        /// Why: the connection was lost (true) or the terminal asked (false).
        disconnected: bool,
        /// The request to answer; 0 for none.
        request_id: u64,
    },
    /// Ask for the floor.
    Request {
        /// What the request is answered with.
        answer: Answer,
        /// The requesting session; the answer goes to it, and a session that
        /// is not the group's current member for its terminal is refused.
        from: Arc<Link>,
        /// Requested priority.
        priority: Priority,
        /// Normal, broadcast or emergency.
        kind: RequestKind,
        /// The declarer's words for the control room (`EmergencyDeclare.text`,
        /// at most [`MAX_EMERGENCY_TEXT`] bytes); empty for other requests.
        text: String,
        /// The request to answer (with granted, queued or denied).
        request_id: u64,
    },
    /// Give the floor back or withdraw a queued request.
    Release {
        /// The requesting session.
        from: Arc<Link>,
        /// The burst being ended (from `FloorGranted`), or 0 for whatever the
        /// terminal holds or has queued.
        burst: u32,
        /// The sequence number of the burst's last frame the terminal sent
        /// (`FloorRelease.last_sequence`): no later frame is forwarded.
        last_sequence: Option<u16>,
        /// The request to answer with `Ack` once the burst is logged.
        request_id: u64,
    },
    /// A dispatcher clears the group's emergency.
    ClearEmergency {
        /// The dispatcher's session.
        from: Arc<Link>,
        /// The request to answer with `EmergencyState` or `Error`.
        request_id: u64,
    },
    /// The admin API clears the group's emergency as a dispatcher would, with
    /// no session: members see `EmergencyState{active: false, cleared_by: 0}`
    /// and the call log names [`ptt_calllog::ADMIN_TERMINAL`].
    AdminClearEmergency {
        /// Answered with whether an emergency was active (and is now cleared).
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// What the cluster says about the group (relays in a cluster only).
    /// Boxed: its NATS handles would make every command, and every group's
    /// queue, several times larger.
    Cluster(Box<ClusterCommand>),
}

/// What reaches a group task from the other relays of its cluster, or from
/// the tasks it started to reach them.
#[derive(Debug)]
pub enum ClusterCommand {
    /// This relay took the group's floor lease (nobody owned it) and takes
    /// the other relays' calls on `calls`; `then` is the local command that
    /// found no owner, handled now by this relay.
    Owned {
        /// The lease, renewed in the background.
        held: ptt_cluster::HeldFloor,
        /// The other relays' calls.
        calls: ptt_cluster::FloorInbox,
        /// The command to handle as the owner.
        then: Box<Command>,
    },
    /// NATS is out of reach: this relay serves its own terminals alone for
    /// now; `then` is the local command that could not reach the owner.
    Isolated {
        /// The command to handle alone.
        then: Box<Command>,
    },
    /// A call from a terminal of another relay, for this relay as the owner.
    Call(ptt_cluster::PendingFloorCall),
    /// News from the relay that owns the group's floor.
    News(ptt_cluster::FloorNews),
}

/// What answers a floor-changing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `FloorGranted`, `FloorQueued` or `FloorDenied` (a `FloorRequest`).
    Floor,
    /// `EmergencyState`, or `FloorDenied` if refused (`EmergencyDeclare`,
    /// `EmergencyClear`).
    Emergency,
}
