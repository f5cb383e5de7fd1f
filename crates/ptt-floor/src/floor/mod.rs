//! The floor arbiter of one group.

use std::collections::VecDeque;
use std::time::Instant;

use crate::event::{BurstEnd, ClearEmergencyError, DenyReason, Event, RevokeReason};
use crate::policy::FloorPolicy;
use crate::queue::{Members, QueuedRequest, RequestQueue};
use crate::timer::{Timer, TimerTable};
use crate::types::{BurstId, MemberRights, ParticipantId, Priority, RequestKind};

mod transitions;

/// Upper bound on what is preallocated from `queue_limit`, so an absurd limit
/// does not reserve gigabytes up front (the buffers still grow if needed).
const MAX_PREALLOC: usize = 4096;

/// Members preallocated by [`Floor::new`].
const DEFAULT_MEMBER_CAPACITY: usize = 64;

/// The state of a floor, as [`Floor::state`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorState {
    /// Nobody holds the floor (and the queue is empty).
    Idle,
    /// `holder` talks in `burst`.
    Taken {
        /// The holder.
        holder: ParticipantId,
        /// The current burst.
        burst: BurstId,
        /// Its priority.
        priority: Priority,
        /// Its kind.
        kind: RequestKind,
    },
    /// `holder` has been told to stop (talk limit) and is in its grace
    /// period: media is still forwarded until `deadline`, then the floor is
    /// taken from them.
    Revoking {
        /// The holder being revoked.
        holder: ParticipantId,
        /// The current burst.
        burst: BurstId,
        /// Its priority.
        priority: Priority,
        /// Its kind.
        kind: RequestKind,
        /// End of the grace period.
        deadline: Instant,
        /// Why the holder is being revoked.
        reason: RevokeReason,
    },
}

impl FloorState {
    /// The holder, in the taken and revoking states.
    #[must_use]
    pub fn holder(&self) -> Option<ParticipantId> {
        match *self {
            FloorState::Idle => None,
            FloorState::Taken { holder, .. } | FloorState::Revoking { holder, .. } => Some(holder),
        }
    }

    /// The current burst, in the taken and revoking states.
    #[must_use]
    pub fn burst(&self) -> Option<BurstId> {
        match *self {
            FloorState::Idle => None,
            FloorState::Taken { burst, .. } | FloorState::Revoking { burst, .. } => Some(burst),
        }
    }
}

/// The burst in progress.
#[derive(Clone, Copy, Debug)]
struct Burst {
    holder: ParticipantId,
    id: BurstId,
    priority: Priority,
    kind: RequestKind,
    started: Instant,
    /// Set once revoked with a grace period: its end and the reason.
    revoking: Option<(Instant, RevokeReason)>,
}

/// Floor control of one group: a sans-IO state machine.
///
/// Feed it inputs with the `handle_*` methods, then drain
/// [`poll_event`](Self::poll_event) until `None` and re-arm the timer from
/// [`poll_timeout`](Self::poll_timeout). See the crate documentation for the
/// loop and the order of events.
#[derive(Debug)]
pub struct Floor {
    policy: FloorPolicy,
    members: Members,
    queue: RequestQueue,
    /// Positions or expiries may be stale; reconciled at the end of an input.
    queue_dirty: bool,
    current: Option<Burst>,
    next_burst: u32,
    emergency: bool,
    timers: TimerTable,
    events: VecDeque<Event>,
}

impl Floor {
    /// A floor with room for a typical group preallocated.
    #[must_use]
    pub fn new(policy: FloorPolicy) -> Self {
        Floor::with_capacity(policy, DEFAULT_MEMBER_CAPACITY)
    }

    /// A floor preallocated for `members` members, so that joins up to that
    /// count do not allocate either.
    #[must_use]
    pub fn with_capacity(policy: FloorPolicy, members: usize) -> Self {
        let queue_cap = policy.queue_limit.min(MAX_PREALLOC);
        Floor {
            policy,
            members: Members::with_capacity(members),
            queue: RequestQueue::with_capacity(queue_cap),
            queue_dirty: false,
            current: None,
            next_burst: 1,
            emergency: false,
            timers: TimerTable::default(),
            // One input emits at most a queue's worth of refusals plus a
            // queue's worth of position updates plus a handful more.
            events: VecDeque::with_capacity(2 * queue_cap + 16),
        }
    }

    /// The policy this floor runs with.
    #[must_use]
    pub fn policy(&self) -> &FloorPolicy {
        &self.policy
    }

    // ----- inputs --------------------------------------------------------

    /// `id` joined the group with `rights`, or its rights changed.
    ///
    /// Emits nothing. New rights apply to later requests; a grant or queue
    /// place already held is kept.
    pub fn handle_join(&mut self, _now: Instant, id: ParticipantId, rights: MemberRights) {
        self.members.upsert(id, rights);
    }

    /// `id` left the group or disconnected.
    ///
    /// A holder's burst ends (`BurstEnded` with [`BurstEnd::Left`]) and the
    /// queue head is granted; a queued request is dropped silently and those
    /// behind get `QueuePosition`. No later event names `id`. Unknown ids are
    /// ignored.
    pub fn handle_leave(&mut self, now: Instant, id: ParticipantId) {
        let Some(member) = self.members.remove(id) else {
            return;
        };
        if member.queued {
            self.queue.remove(id);
            self.queue_dirty = true;
        }
        if self.holder() == Some(id) {
            self.finish_burst(now, BurstEnd::Left);
        }
        self.sync_queue(now);
    }

    /// `id` asks for the floor at `priority` (clamped to its rights, see
    /// [`MemberRights::effective_priority`]) for a request of `kind`.
    ///
    /// Answers with `Granted` (+ `Taken`), `Queued`, or `Denied`; may pre-empt
    /// the holder. Rules, in order:
    /// 1. non-member → `NotMember`; listen-only → `ListenOnly`; broadcast
    ///    without dispatcher rights → `PriorityNotAllowed`;
    /// 2. the holder asking again → `AlreadyHolder`, except an emergency
    ///    request, which upgrades the running burst in place (same burst id,
    ///    new `Granted` and `Taken`, talk limit restarted, grace cancelled);
    /// 3. a queued member asking again → `AlreadyQueued` unless the new
    ///    request ranks higher or pre-empts, which replaces the old entry;
    /// 4. idle → granted; above the holder's priority with the pre-emptive
    ///    right, or any emergency over a non-emergency holder → pre-empts;
    ///    a broadcast holds the floor → `BroadcastInProgress`; else queued.
    ///
    /// Refusing a request from a member who is already queued leaves its
    /// queued request in place.
    pub fn handle_request(
        &mut self,
        now: Instant,
        id: ParticipantId,
        priority: Priority,
        kind: RequestKind,
    ) {
        let Some(member) = self.members.get(id).copied() else {
            return self.deny(id, DenyReason::NotMember);
        };
        let rights = member.rights;
        if !rights.may_talk {
            return self.deny(id, DenyReason::ListenOnly);
        }
        if kind == RequestKind::Broadcast && !rights.is_dispatcher() {
            return self.deny(id, DenyReason::PriorityNotAllowed);
        }
        let priority = rights.effective_priority(priority, kind);

        if let Some(cur) = self.current
            && cur.holder == id
        {
            if kind == RequestKind::Emergency && cur.kind != RequestKind::Emergency {
                self.upgrade_to_emergency(now, cur);
            } else {
                self.deny(id, DenyReason::AlreadyHolder);
            }
            return;
        }
        let may_preempt = rights.preemptive || kind == RequestKind::Emergency;
        let preempts = self
            .current
            .is_some_and(|cur| priority > cur.priority && may_preempt);
        if member.queued {
            match self.queue.get(id) {
                Some(old) if priority > old.priority || preempts => {
                    self.queue.remove(id);
                    self.members.set_queued(id, false);
                    self.queue_dirty = true;
                }
                _ => return self.deny(id, DenyReason::AlreadyQueued),
            }
        }
        if kind == RequestKind::Emergency {
            self.raise_emergency(id);
        }
        match self.current {
            None => self.grant(now, id, priority, kind),
            Some(cur) => {
                if preempts {
                    let reason = RevokeReason::Preempted { by: id };
                    self.emit(Event::Revoked {
                        who: cur.holder,
                        reason,
                    });
                    self.end_burst(now, BurstEnd::Revoked(reason));
                    self.grant(now, id, priority, kind);
                } else if cur.kind == RequestKind::Broadcast {
                    self.deny(id, DenyReason::BroadcastInProgress);
                } else {
                    self.enqueue(now, id, priority, kind);
                }
            }
        }
        self.sync_queue(now);
    }

    /// `id` lets go of the transmit key.
    ///
    /// The holder's burst ends (`Released`, or `Revoked(reason)` if it was
    /// already being revoked) and the queue head is granted, or the floor
    /// goes idle. A queued member withdraws its request (`Withdrawn`).
    /// Anyone else: ignored.
    pub fn handle_release(&mut self, now: Instant, id: ParticipantId) {
        if let Some(cur) = self.current
            && cur.holder == id
        {
            let outcome = cur
                .revoking
                .map_or(BurstEnd::Released, |(_, reason)| BurstEnd::Revoked(reason));
            self.finish_burst(now, outcome);
        } else if self.members.get(id).is_some_and(|m| m.queued) {
            self.queue.remove(id);
            self.members.set_queued(id, false);
            self.queue_dirty = true;
            self.emit(Event::Withdrawn { who: id });
        }
        self.sync_queue(now);
    }

    /// A voice frame from `id` arrived: returns whether to forward it.
    ///
    /// The hot path: true only for the holder (also during a revoke grace
    /// period, until its deadline). For the holder it restarts the
    /// media-inactivity timer. Emits nothing and never allocates.
    #[inline]
    pub fn handle_media(&mut self, now: Instant, id: ParticipantId) -> bool {
        match self.current {
            Some(cur) if cur.holder == id => match cur.revoking {
                None => {
                    if let Some(d) = self.policy.media_inactivity() {
                        self.timers.set(Timer::MediaInactivity, now.checked_add(d));
                    }
                    true
                }
                Some((deadline, _)) => now < deadline,
            },
            _ => false,
        }
    }

    /// Fires every timer due at `now`, earliest first.
    ///
    /// Call it when the instant from [`poll_timeout`](Self::poll_timeout) is
    /// reached; calling it early or twice is harmless. Durations restarted
    /// by a firing timer count from `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, at)) = self.timers.earliest()
            && at <= now
        {
            self.timers.clear(timer);
            match timer {
                Timer::RevokeGrace => {
                    if let Some(cur) = self.current {
                        let reason = cur.revoking.map_or(RevokeReason::TalkLimit, |(_, r)| r);
                        self.finish_burst(now, BurstEnd::Revoked(reason));
                    }
                }
                Timer::MediaInactivity => {
                    if let Some(cur) = self.current {
                        let reason = RevokeReason::MediaInactivity;
                        self.emit(Event::Revoked {
                            who: cur.holder,
                            reason,
                        });
                        self.finish_burst(now, BurstEnd::Revoked(reason));
                    }
                }
                Timer::TalkLimit => self.talk_limit_reached(now),
                Timer::QueueExpiry => self.expire_queue(now),
            }
            self.sync_queue(now);
        }
    }

    /// The dispatcher `by` clears the group's emergency.
    ///
    /// Emits `EmergencyCleared`, refuses queued emergency requests
    /// (`Denied { EmergencyCleared }`), and revokes an emergency holder
    /// (`Revoked { EmergencyCleared }`), granting the queue head. Refused
    /// without any change or event if `by` is no member, lacks dispatcher
    /// rights, or the group is not in emergency.
    pub fn handle_clear_emergency(
        &mut self,
        now: Instant,
        by: ParticipantId,
    ) -> Result<(), ClearEmergencyError> {
        let member = self.members.get(by).ok_or(ClearEmergencyError::NotMember)?;
        if !member.rights.is_dispatcher() {
            return Err(ClearEmergencyError::NotDispatcher);
        }
        if !self.emergency {
            return Err(ClearEmergencyError::NotInEmergency);
        }
        self.emergency = false;
        self.emit(Event::EmergencyCleared { by });
        let (members, events) = (&mut self.members, &mut self.events);
        self.queue.retain(|e| {
            if e.kind != RequestKind::Emergency {
                return true;
            }
            members.set_queued(e.who, false);
            events.push_back(Event::Denied {
                who: e.who,
                reason: DenyReason::EmergencyCleared,
            });
            false
        });
        self.queue_dirty = true;
        if let Some(cur) = self.current
            && cur.kind == RequestKind::Emergency
        {
            let reason = RevokeReason::EmergencyCleared;
            self.emit(Event::Revoked {
                who: cur.holder,
                reason,
            });
            self.finish_burst(now, BurstEnd::Revoked(reason));
        }
        self.sync_queue(now);
        Ok(())
    }

    // ----- outputs -------------------------------------------------------

    /// The next event, in the order they happened; `None` when drained.
    ///
    /// Drain it to `None` after every input: the buffer is preallocated, and
    /// only a caller that lets it pile up makes it grow.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next;
    /// `None` if no timer is armed. Changes after any input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest().map(|(_, at)| at)
    }

    // ----- queries -------------------------------------------------------

    /// The current state.
    #[must_use]
    pub fn state(&self) -> FloorState {
        match self.current {
            None => FloorState::Idle,
            Some(b) => match b.revoking {
                None => FloorState::Taken {
                    holder: b.holder,
                    burst: b.id,
                    priority: b.priority,
                    kind: b.kind,
                },
                Some((deadline, reason)) => FloorState::Revoking {
                    holder: b.holder,
                    burst: b.id,
                    priority: b.priority,
                    kind: b.kind,
                    deadline,
                    reason,
                },
            },
        }
    }

    /// Who holds the floor, if anyone.
    #[must_use]
    pub fn holder(&self) -> Option<ParticipantId> {
        self.current.map(|b| b.holder)
    }

    /// The queued requests in grant order.
    pub fn queue(&self) -> impl ExactSizeIterator<Item = QueuedRequest> + '_ {
        self.queue.iter()
    }

    /// Number of queued requests.
    #[must_use]
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the group is in emergency (until a dispatcher clears it).
    #[must_use]
    pub fn in_emergency(&self) -> bool {
        self.emergency
    }

    /// Whether `id` is a member.
    #[must_use]
    pub fn is_member(&self, id: ParticipantId) -> bool {
        self.members.get(id).is_some()
    }

    /// `id`'s rights, if a member.
    #[must_use]
    pub fn rights(&self, id: ParticipantId) -> Option<MemberRights> {
        self.members.get(id).map(|m| m.rights)
    }

    /// Number of members.
    #[must_use]
    pub fn member_count(&self) -> usize {
        self.members.len()
    }
}
