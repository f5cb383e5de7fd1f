//! Outputs of the floor: what happened, to whom, and why.

use std::time::{Duration, Instant};

use crate::types::{BurstId, ParticipantId, Priority, RequestKind};

/// Something the relay must act on, drained with
/// [`Floor::poll_event`](crate::Floor::poll_event).
///
/// All variants are `Copy` and hold no heap data, so producing them never
/// allocates. [`Event::audience`] says who should hear of it. For the order of
/// the events of one input see the crate documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `to` may talk now; every voice frame of the burst carries `burst`.
    Granted {
        /// The new holder.
        to: ParticipantId,
        /// The burst this grant starts.
        burst: BurstId,
        /// The priority the grant was made at (after clamping).
        priority: Priority,
        /// What was granted.
        kind: RequestKind,
        /// When the burst will be revoked, counted from now; `None` if
        /// unlimited. Lets the terminal show a countdown.
        talk_limit: Option<Duration>,
    },
    /// `who`'s request waits in the queue at `position` (1 = next).
    Queued {
        /// The queued requester.
        who: ParticipantId,
        /// 1-based place in the queue.
        position: u32,
        /// Queue length after this insertion.
        queue_len: u32,
    },
    /// `who`'s place in the queue changed (someone ahead left, was granted,
    /// expired, or someone of higher priority was queued ahead).
    QueuePosition {
        /// The queued requester.
        who: ParticipantId,
        /// New 1-based place in the queue.
        position: u32,
    },
    /// `who`'s request was refused, or their queued request was dropped.
    Denied {
        /// The requester.
        who: ParticipantId,
        /// Why; maps to the refusal reason code on the wire.
        reason: DenyReason,
    },
    /// `who` withdrew a queued request (released before being granted).
    Withdrawn {
        /// The requester who gave up their place.
        who: ParticipantId,
    },
    /// `who`'s queued request waited too long without moving up and was
    /// dropped ([`FloorPolicy::queue_expiry`](crate::FloorPolicy::queue_expiry)).
    Expired {
        /// The requester whose request expired.
        who: ParticipantId,
    },
    /// The holder `who` must stop talking. For a talk-limit revoke the floor
    /// enters the revoking state and media is still forwarded for the grace
    /// period; for every other reason the burst has ended already.
    Revoked {
        /// The (former) holder.
        who: ParticipantId,
        /// Why.
        reason: RevokeReason,
    },
    /// For all members: `holder` now talks in `burst`.
    Taken {
        /// The new holder.
        holder: ParticipantId,
        /// The burst.
        burst: BurstId,
        /// Its priority.
        priority: Priority,
        /// Its kind (a broadcast tells members not to bother requesting).
        kind: RequestKind,
    },
    /// For all members: nobody talks any more.
    Idle {
        /// The burst that just ended.
        last_burst: BurstId,
        /// How it ended.
        ended: BurstEnd,
    },
    /// For the call log: one burst is over. Emitted for every burst exactly
    /// once, before whatever follows it (next grant or idle).
    BurstEnded {
        /// The burst.
        burst: BurstId,
        /// Who talked in it.
        holder: ParticipantId,
        /// Its priority.
        priority: Priority,
        /// Its kind.
        kind: RequestKind,
        /// When it was granted.
        started: Instant,
        /// When it ended.
        ended: Instant,
        /// How it ended.
        outcome: BurstEnd,
    },
    /// For all members and the control room: `by` raised an emergency; the
    /// group stays in emergency until a dispatcher clears it.
    EmergencyStarted {
        /// Who raised it.
        by: ParticipantId,
    },
    /// For all members: the dispatcher `by` cleared the emergency.
    EmergencyCleared {
        /// The dispatcher who cleared it.
        by: ParticipantId,
    },
}

/// Why a request was refused or a queued request dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The requester is not a member of the group (never joined, or left).
    NotMember,
    /// The requester is a listen-only member.
    ListenOnly,
    /// The queue is full and the request does not outrank its tail, or the
    /// request was displaced from a full queue by a higher-priority one.
    QueueFull,
    /// A broadcast holds the floor (or just started): only its caller talks.
    BroadcastInProgress,
    /// The request needs rights the member lacks (a broadcast needs
    /// dispatcher rights).
    PriorityNotAllowed,
    /// The requester already holds the floor.
    AlreadyHolder,
    /// The requester is already queued and the new request does not raise
    /// its priority; the existing place is kept.
    AlreadyQueued,
    /// A queued emergency request was dropped because the emergency was
    /// cleared.
    EmergencyCleared,
}

/// Why the holder lost the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// A higher-priority request with the pre-emptive right (or an emergency)
    /// took the floor. The pre-empted holder is not re-queued (as in MCPTT).
    Preempted {
        /// The new holder.
        by: ParticipantId,
    },
    /// The burst reached its talk limit.
    TalkLimit,
    /// The holder sent no media for the inactivity timeout.
    MediaInactivity,
    /// The holder's emergency burst ended because the emergency was cleared.
    EmergencyCleared,
}

/// How a burst ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BurstEnd {
    /// The holder released the floor.
    Released,
    /// The floor was revoked. After a talk-limit revoke this is the outcome
    /// whether the holder released during the grace period or was cut off at
    /// its end.
    Revoked(RevokeReason),
    /// The holder left the group or disconnected.
    Left,
}

/// Who an [`Event`] is for, so the relay can route it without matching every
/// variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Only this participant (a reply to their request, or news of it).
    Participant(ParticipantId),
    /// Every member of the group.
    Group,
    /// The call log (and monitoring); not sent to terminals.
    Log,
}

impl Event {
    /// Who should hear of this event.
    #[must_use]
    pub fn audience(&self) -> Audience {
        match *self {
            Event::Granted { to: who, .. }
            | Event::Queued { who, .. }
            | Event::QueuePosition { who, .. }
            | Event::Denied { who, .. }
            | Event::Withdrawn { who }
            | Event::Expired { who }
            | Event::Revoked { who, .. } => Audience::Participant(who),
            Event::Taken { .. }
            | Event::Idle { .. }
            | Event::EmergencyStarted { .. }
            | Event::EmergencyCleared { .. } => Audience::Group,
            Event::BurstEnded { .. } => Audience::Log,
        }
    }
}

/// Why [`Floor::handle_clear_emergency`](crate::Floor::handle_clear_emergency)
/// refused; the state is unchanged and no event is emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ClearEmergencyError {
    /// The caller is not a member of the group: reply with a refusal.
    #[error("not a member of the group")]
    NotMember,
    /// The caller lacks dispatcher rights (`max_priority` below
    /// `Dispatcher`): reply with a refusal; only the control room clears.
    #[error("clearing an emergency needs dispatcher rights")]
    NotDispatcher,
    /// The group is not in emergency: nothing to do; a console that raced
    /// another one can ignore it.
    #[error("the group is not in emergency")]
    NotInEmergency,
}
