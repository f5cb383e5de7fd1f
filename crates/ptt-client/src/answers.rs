//! The requests and answer checks that the client handle, its talks and
//! its reconnect supervisor share: the relay's answer to a floor request,
//! releasing the floor, quality reports, and turning an answer that is not
//! the expected one into a [`ClientError`].

use std::time::Duration;

use ptt_proto::pb::{self, client_message::Body as Request, server_message::Body};

use crate::error::ClientError;
use crate::events::{enum_or_default, limit};
use crate::shared::Shared;

/// The relay's answer to a floor request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorOutcome {
    /// Talk now, with this burst id in every voice datagram.
    Granted {
        /// The burst id.
        burst: u32,
        /// When the relay revokes the burst; `None`: no limit.
        talk_limit: Option<Duration>,
    },
    /// The floor is busy; the request waits in the queue. The grant (or a
    /// refusal) follows as an event.
    Queued {
        /// 1-based position (1: next).
        position: u32,
        /// Requests queued in all.
        queue_length: u32,
    },
    /// Refused.
    Denied {
        /// Why.
        reason: pb::FloorDenyReason,
    },
}

impl FloorOutcome {
    pub(crate) fn from_answer(answer: Body, group: u32) -> Result<Self, ClientError> {
        match answer {
            Body::FloorGranted(g) => Ok(Self::Granted {
                burst: g.burst_id,
                talk_limit: limit(g.talk_limit_ms),
            }),
            Body::FloorQueued(q) => Ok(Self::Queued {
                position: q.position,
                queue_length: q.queue_length,
            }),
            Body::FloorDenied(d) => Ok(Self::Denied {
                reason: enum_or_default(d.reason),
            }),
            other => Err(unexpected(other, Some(group))),
        }
    }
}

/// Sends `FloorRelease` and waits for the `Ack`. `last_sequence`: the
/// sequence number of the burst's last frame sent, if any, so the relay
/// forwards nothing sent after the release.
pub(crate) async fn release(
    shared: &Shared,
    group: u32,
    burst: u32,
    last_sequence: Option<u16>,
) -> Result<(), ClientError> {
    let answer = shared
        .request(Request::FloorRelease(pb::FloorRelease {
            group_id: group,
            burst_id: burst,
            last_sequence: last_sequence.map(u32::from),
        }))
        .await?;
    shared.set_held(group, None);
    expect_ack(answer, Some(group))
}

/// Sends one `QualityReport` and waits for the `Ack`.
pub(crate) async fn send_quality_report(
    shared: &Shared,
    report: pb::QualityReport,
) -> Result<(), ClientError> {
    expect_ack(shared.request(Request::QualityReport(report)).await?, None)
}

/// `Ok` for the relay's `Ack`, the error it sent or a protocol error.
pub(crate) fn expect_ack(answer: Body, group: Option<u32>) -> Result<(), ClientError> {
    match answer {
        Body::Ack(_) => Ok(()),
        other => Err(unexpected(other, group)),
    }
}

/// An answer that is not the success message of its request: the relay's
/// `Error`, or a protocol error.
pub(crate) fn unexpected(answer: Body, group: Option<u32>) -> ClientError {
    match answer {
        Body::Error(error) => ClientError::from_relay(&error, group),
        other => ClientError::Protocol(format!("unexpected answer: {other:?}")),
    }
}
