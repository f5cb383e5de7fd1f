//! The private transitions behind the inputs of [`Floor`]: granting, ending
//! bursts, queueing, timers firing. Kept apart from the public surface so each
//! file stays readable.

use std::time::{Duration, Instant};

use super::{Burst, Floor};
use crate::event::{BurstEnd, DenyReason, Event, RevokeReason};
use crate::queue::Entry;
use crate::timer::Timer;
use crate::types::{BurstId, ParticipantId, Priority, RequestKind};

impl Floor {
    pub(super) fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    pub(super) fn deny(&mut self, who: ParticipantId, reason: DenyReason) {
        self.emit(Event::Denied { who, reason });
    }

    pub(super) fn raise_emergency(&mut self, by: ParticipantId) {
        if !self.emergency {
            self.emergency = true;
            self.emit(Event::EmergencyStarted { by });
        }
    }

    /// Arms the talk-limit and media timers of a burst starting now.
    pub(super) fn arm_burst_timers(&mut self, now: Instant, kind: RequestKind) -> Option<Duration> {
        let limit = self.policy.talk_limit_for(kind);
        let media = self.policy.media_inactivity();
        self.timers.clear_burst();
        self.timers
            .set(Timer::TalkLimit, limit.and_then(|d| now.checked_add(d)));
        self.timers.set(
            Timer::MediaInactivity,
            media.and_then(|d| now.checked_add(d)),
        );
        limit
    }

    pub(super) fn grant(
        &mut self,
        now: Instant,
        to: ParticipantId,
        priority: Priority,
        kind: RequestKind,
    ) {
        let burst = BurstId(self.next_burst);
        self.next_burst = self.next_burst.wrapping_add(1).max(1);
        self.current = Some(Burst {
            holder: to,
            id: burst,
            priority,
            kind,
            started: now,
            revoking: None,
        });
        let talk_limit = self.arm_burst_timers(now, kind);
        self.emit(Event::Granted {
            to,
            burst,
            priority,
            kind,
            talk_limit,
        });
        self.emit(Event::Taken {
            holder: to,
            burst,
            priority,
            kind,
        });
        if kind == RequestKind::Broadcast && !self.queue.is_empty() {
            let (members, events) = (&mut self.members, &mut self.events);
            self.queue.retain(|e| {
                members.set_queued(e.who, false);
                events.push_back(Event::Denied {
                    who: e.who,
                    reason: DenyReason::BroadcastInProgress,
                });
                false
            });
            self.queue_dirty = true;
        }
    }

    pub(super) fn upgrade_to_emergency(&mut self, now: Instant, cur: Burst) {
        self.raise_emergency(cur.holder);
        let kind = RequestKind::Emergency;
        let priority = Priority::Emergency;
        self.current = Some(Burst {
            priority,
            kind,
            revoking: None,
            ..cur
        });
        let talk_limit = self.arm_burst_timers(now, kind);
        self.emit(Event::Granted {
            to: cur.holder,
            burst: cur.id,
            priority,
            kind,
            talk_limit,
        });
        self.emit(Event::Taken {
            holder: cur.holder,
            burst: cur.id,
            priority,
            kind,
        });
    }

    /// Ends the current burst (`BurstEnded`) and disarms its timers.
    pub(super) fn end_burst(&mut self, now: Instant, outcome: BurstEnd) {
        let Some(b) = self.current.take() else {
            return;
        };
        self.timers.clear_burst();
        self.emit(Event::BurstEnded {
            burst: b.id,
            holder: b.holder,
            priority: b.priority,
            kind: b.kind,
            started: b.started,
            ended: now,
            outcome,
        });
    }

    /// Ends the current burst and hands the floor to the queue head, or
    /// goes idle.
    pub(super) fn finish_burst(&mut self, now: Instant, outcome: BurstEnd) {
        let Some(b) = self.current else {
            return;
        };
        self.end_burst(now, outcome);
        if let Some(head) = self.queue.pop_front() {
            self.members.set_queued(head.who, false);
            self.queue_dirty = true;
            self.grant(now, head.who, head.priority, head.kind);
        } else {
            self.emit(Event::Idle {
                last_burst: b.id,
                ended: outcome,
            });
        }
    }

    pub(super) fn enqueue(
        &mut self,
        now: Instant,
        who: ParticipantId,
        priority: Priority,
        kind: RequestKind,
    ) {
        if self.queue.len() >= self.policy.queue_limit {
            match self.queue.last() {
                Some(last) if last.priority < priority => {
                    if let Some(out) = self.queue.pop_back() {
                        self.members.set_queued(out.who, false);
                        self.deny(out.who, DenyReason::QueueFull);
                    }
                }
                _ => return self.deny(who, DenyReason::QueueFull),
            }
        }
        let expires = self.policy.queue_expiry().and_then(|d| now.checked_add(d));
        let position = self.queue.insert(Entry {
            who,
            priority,
            kind,
            since: now,
            expires,
            reported: 0,
        });
        self.members.set_queued(who, true);
        self.queue_dirty = true;
        self.emit(Event::Queued {
            who,
            position,
            queue_len: crate::queue::position(self.queue.len() - 1),
        });
    }

    pub(super) fn talk_limit_reached(&mut self, now: Instant) {
        let Some(cur) = self.current else {
            return;
        };
        let reason = RevokeReason::TalkLimit;
        self.emit(Event::Revoked {
            who: cur.holder,
            reason,
        });
        let deadline = now.checked_add(self.policy.revoke_grace);
        match deadline {
            Some(deadline) if deadline > now => {
                self.current = Some(Burst {
                    revoking: Some((deadline, reason)),
                    ..cur
                });
                self.timers.clear(Timer::MediaInactivity);
                self.timers.set(Timer::RevokeGrace, Some(deadline));
            }
            _ => self.finish_burst(now, BurstEnd::Revoked(reason)),
        }
    }

    pub(super) fn expire_queue(&mut self, now: Instant) {
        let (members, events) = (&mut self.members, &mut self.events);
        self.queue.retain(|e| {
            if e.expires.is_some_and(|at| at <= now) {
                members.set_queued(e.who, false);
                events.push_back(Event::Expired { who: e.who });
                false
            } else {
                true
            }
        });
        self.queue_dirty = true;
    }

    /// Reports position changes and re-arms queue expiry, once per input.
    pub(super) fn sync_queue(&mut self, now: Instant) {
        if !self.queue_dirty {
            return;
        }
        self.queue_dirty = false;
        let events = &mut self.events;
        let earliest =
            self.queue
                .sync_positions(now, self.policy.queue_expiry(), |who, position| {
                    events.push_back(Event::QueuePosition { who, position });
                });
        self.timers.set(Timer::QueueExpiry, earliest);
    }
}
