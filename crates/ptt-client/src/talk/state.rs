//! Where a talk is and how it ended: the states, outcomes and errors a
//! [`Talk`](super::Talk) reports.

use std::time::Duration;

use ptt_proto::pb;

use crate::error::ClientError;

/// Where a talk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalkState {
    /// The floor request is on its way; frames are buffered.
    Requesting,
    /// The floor is busy and the request waits in the queue; frames are
    /// buffered (the oldest dropped once the buffer is full).
    Queued {
        /// 1-based position (1: next).
        position: u32,
        /// Requests queued in all.
        queue_length: u32,
    },
    /// The floor is ours: frames are sent as they are pushed.
    Talking {
        /// The granted burst id.
        burst: u32,
        /// When the relay will revoke the burst; `None`: no limit.
        talk_limit: Option<Duration>,
    },
    /// The talk is over; pushed frames are refused.
    Ended(TalkEnd),
}

/// How a talk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalkEnd {
    /// Released after talking; the relay acknowledged.
    Released,
    /// Released before the floor was granted: the request was withdrawn and
    /// the buffered audio discarded.
    Withdrawn,
    /// The relay refused the floor (or a queued request expired); the
    /// buffered audio was discarded.
    Denied(pb::FloorDenyReason),
    /// The relay took the floor away (pre-emption, talk limit, ...).
    Revoked(pb::FloorRevokeReason),
    /// The connection was lost during the talk.
    Disconnected,
    /// Something else failed (e.g. the relay answered with an error).
    Failed(ClientError),
}

/// Why a frame was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TalkError {
    /// The talk is over (denied, revoked, released, disconnected): stop
    /// capturing, and tell the user why.
    #[error("the talk has ended: {0:?}")]
    Ended(TalkEnd),
    /// The talk task is behind by a whole buffer; this frame was dropped.
    /// Happens only if the runtime is starved.
    #[error("talk buffer full; frame dropped")]
    Overloaded,
}

/// The result of a talk once it has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkSummary {
    /// The group.
    pub group: u32,
    /// The burst id, if the floor was granted.
    pub burst: Option<u32>,
    /// Voice frames sent.
    pub frames_sent: u64,
    /// Frames dropped: buffer overflow while waiting, audio discarded after
    /// a denial, frames refused by the connection, frames after revocation.
    pub frames_dropped: u64,
    /// How it ended.
    pub end: TalkEnd,
}

/// The floor grant a talk got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The burst id.
    pub burst: u32,
    /// When the relay will revoke the burst; `None`: no limit.
    pub talk_limit: Option<Duration>,
}
