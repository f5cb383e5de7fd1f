//! Mapping between the floor core's types and the wire's enums, in one place
//! so every message agrees.

use std::time::Duration;

use ptt_floor::{BurstEnd, DenyReason, Priority, RequestKind, RevokeReason};
use ptt_proto::pb::{self, server_message::Body};

use ptt_calllog::{BurstKind, BurstOutcome};

/// A duration in whole milliseconds for the wire, saturating.
pub fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// The wire priority of a floor priority.
pub fn priority(priority: Priority) -> pb::Priority {
    match priority {
        Priority::Normal => pb::Priority::Normal,
        Priority::Elevated => pb::Priority::Elevated,
        Priority::Dispatcher => pb::Priority::Dispatcher,
        Priority::Emergency => pb::Priority::Emergency,
    }
}

/// The floor priority a wire value asks for; unknown or unset means normal.
pub fn priority_from_wire(value: i32) -> Priority {
    match pb::Priority::try_from(value) {
        Ok(pb::Priority::Elevated) => Priority::Elevated,
        Ok(pb::Priority::Dispatcher) => Priority::Dispatcher,
        Ok(pb::Priority::Emergency) => Priority::Emergency,
        _ => Priority::Normal,
    }
}

/// The wire kind of a burst.
pub fn kind(kind: RequestKind) -> pb::FloorKind {
    match kind {
        RequestKind::Normal => pb::FloorKind::Normal,
        RequestKind::Broadcast => pb::FloorKind::Broadcast,
        RequestKind::Emergency => pb::FloorKind::Emergency,
    }
}

/// The burst kind a wire value asks for; unknown or unset means normal.
pub fn kind_from_wire(value: i32) -> RequestKind {
    match pb::FloorKind::try_from(value) {
        Ok(pb::FloorKind::Broadcast) => RequestKind::Broadcast,
        Ok(pb::FloorKind::Emergency) => RequestKind::Emergency,
        _ => RequestKind::Normal,
    }
}

/// The wire reason of a refusal.
pub fn deny_reason(reason: DenyReason) -> pb::FloorDenyReason {
    match reason {
        DenyReason::NotMember => pb::FloorDenyReason::NotMember,
        DenyReason::ListenOnly => pb::FloorDenyReason::ListenOnly,
        DenyReason::QueueFull => pb::FloorDenyReason::QueueFull,
        DenyReason::BroadcastInProgress => pb::FloorDenyReason::BroadcastInProgress,
        DenyReason::PriorityNotAllowed => pb::FloorDenyReason::PriorityNotAllowed,
        DenyReason::AlreadyHolder | DenyReason::AlreadyQueued => {
            pb::FloorDenyReason::AlreadyRequested
        }
        DenyReason::EmergencyCleared => pb::FloorDenyReason::Unspecified,
    }
}

/// The wire reason of a revoke.
pub fn revoke_reason(reason: RevokeReason) -> pb::FloorRevokeReason {
    match reason {
        RevokeReason::Preempted { .. } => pb::FloorRevokeReason::Preempted,
        RevokeReason::TalkLimit => pb::FloorRevokeReason::TalkLimit,
        RevokeReason::MediaInactivity => pb::FloorRevokeReason::MediaInactivity,
        RevokeReason::EmergencyCleared => pb::FloorRevokeReason::Admin,
    }
}

/// The call log's kind of a burst.
pub fn burst_kind(kind: RequestKind) -> BurstKind {
    match kind {
        RequestKind::Normal => BurstKind::Normal,
        RequestKind::Broadcast => BurstKind::Broadcast,
        RequestKind::Emergency => BurstKind::Emergency,
    }
}

/// The call log's outcome of a burst; `disconnected` tells a lost
/// connection from a deliberate leave.
pub fn burst_outcome(end: BurstEnd, disconnected: bool) -> BurstOutcome {
    match end {
        BurstEnd::Released => BurstOutcome::Released,
        BurstEnd::Revoked(RevokeReason::Preempted { .. }) => BurstOutcome::Preempted,
        BurstEnd::Revoked(RevokeReason::TalkLimit) => BurstOutcome::RevokedTalkLimit,
        BurstEnd::Revoked(RevokeReason::MediaInactivity) => BurstOutcome::MediaInactivity,
        BurstEnd::Revoked(RevokeReason::EmergencyCleared) => BurstOutcome::EmergencyCleared,
        BurstEnd::Left if disconnected => BurstOutcome::Disconnected,
        BurstEnd::Left => BurstOutcome::Left,
    }
}

/// An `Error` answer.
pub fn error(reason: pb::ErrorReason, detail: &str) -> Body {
    Body::Error(pb::Error {
        reason: reason.into(),
        detail: detail.to_owned(),
    })
}
