//! Turning the floor's events into what terminals, the hot path and the call
//! log see.

use std::sync::atomic::Ordering;

use ptt_floor::{BurstEnd, DenyReason, Event, FloorState, ParticipantId, RevokeReason};
use ptt_proto::pb::{self, server_message::Body};

use super::command::Answer;
use super::task::{ActiveEmergency, GroupTask};
use crate::metrics::DenialReason;
use crate::{link, policy, wire};
use ptt_calllog::{BurstOutcome, BurstRecord, EmergencyClearedRecord, EmergencyRecord, Record};
use ptt_directory::{GroupId, TerminalId};

impl GroupTask {
    /// Drains the floor's events and acts on each, in order.
    pub(super) fn drain_events(&mut self) {
        while let Some(event) = self.floor.poll_event() {
            self.on_event(event);
        }
        // Every queue or emergency change comes out of the floor as an event
        // drained here.
        self.publish_view();
    }

    /// Publishes the queue length and the emergency for readers (the
    /// dashboard, the admin API). An emergency change is published before
    /// it is announced, so whoever heard of it finds it here.
    fn publish_view(&self) {
        let queue_len = u32::try_from(self.floor.queue_len()).unwrap_or(u32::MAX);
        self.group.queue_len.store(queue_len, Ordering::Relaxed);
        let emergency = self
            .emergency
            .as_ref()
            .map_or(0, |e| 1 << 32 | u64::from(e.by));
        self.group.emergency.store(emergency, Ordering::Release);
    }

    fn on_event(&mut self, event: Event) {
        self.count_event(&event);
        let group_id = self.group.id;
        match event {
            Event::Granted {
                to,
                burst,
                priority,
                kind,
                talk_limit,
            } => {
                if self.current_burst != burst.0 {
                    // An emergency upgrade re-grants the same burst: keep
                    // counting its frames.
                    self.group.frames.store(0, Ordering::Relaxed);
                }
                self.current_burst = burst.0;
                self.group.gate.store(
                    u64::from(to.0) << 32 | u64::from(burst.0),
                    Ordering::Release,
                );
                // A talker on another relay starts sending the moment its
                // grant arrives: its relay's gate opens first.
                self.publish_gate_before_grant(to.0);
                self.answer(
                    to,
                    Body::FloorGranted(pb::FloorGranted {
                        group_id,
                        burst_id: burst.0,
                        talk_limit_ms: talk_limit.map_or(0, wire::millis),
                        priority: wire::priority(priority).into(),
                        kind: wire::kind(kind).into(),
                    }),
                    Some(Answer::Floor),
                );
            }
            Event::Queued {
                who,
                position,
                queue_len,
            } => self.answer(
                who,
                Body::FloorQueued(pb::FloorQueued {
                    group_id,
                    position,
                    queue_length: queue_len,
                }),
                Some(Answer::Floor),
            ),
            Event::QueuePosition { who, position } => {
                let queue_length = u32::try_from(self.floor.queue_len()).unwrap_or(u32::MAX);
                self.tell(
                    who,
                    Body::QueuePositionUpdate(pb::QueuePositionUpdate {
                        group_id,
                        position,
                        queue_length,
                    }),
                );
            }
            Event::Denied { who, reason } => self.answer(
                who,
                Body::FloorDenied(pb::FloorDenied {
                    group_id,
                    reason: wire::deny_reason(reason).into(),
                }),
                None,
            ),
            Event::Withdrawn { .. } => {}
            Event::Expired { who } => self.tell(
                who,
                Body::FloorDenied(pb::FloorDenied {
                    group_id,
                    reason: pb::FloorDenyReason::QueueExpired.into(),
                }),
            ),
            Event::Revoked { who, reason } => {
                let grace_ms = match (reason, self.floor.state()) {
                    (RevokeReason::TalkLimit, FloorState::Revoking { .. }) => {
                        wire::millis(self.floor.policy().revoke_grace)
                    }
                    _ => 0,
                };
                self.tell(
                    who,
                    Body::FloorRevoked(pb::FloorRevoked {
                        group_id,
                        burst_id: self.current_burst,
                        reason: wire::revoke_reason(reason).into(),
                        grace_ms,
                    }),
                );
            }
            Event::Taken {
                holder,
                burst,
                priority,
                kind,
            } => {
                let taken = self.floor_taken_message(holder, burst.0, priority, kind);
                self.broadcast(&link::frame(0, Body::FloorTaken(taken)));
            }
            Event::Idle { last_burst, ended } => {
                // Nobody may talk until the next grant reopens the gate.
                self.group.gate.store(0, Ordering::Release);
                let reason = match ended {
                    BurstEnd::Released => pb::FloorIdleReason::Released,
                    BurstEnd::Revoked(_) => pb::FloorIdleReason::Revoked,
                    BurstEnd::Left if self.leaving_disconnected => {
                        pb::FloorIdleReason::HolderDisconnected
                    }
                    BurstEnd::Left => pb::FloorIdleReason::HolderLeft,
                };
                self.broadcast(&link::frame(
                    0,
                    Body::FloorIdle(pb::FloorIdle {
                        group_id,
                        reason: reason.into(),
                        burst_id: last_burst.0,
                    }),
                ));
            }
            Event::BurstEnded {
                burst,
                holder,
                priority,
                kind,
                started,
                ended,
                outcome,
            } => {
                let frames = self.group.frames.swap(0, Ordering::Relaxed);
                // Published before the burst itself, which the hot path
                // reads first.
                self.group.set_tail_end(self.released_through.take());
                self.group
                    .ended_at_ms
                    .store(self.ctx.clock.now_ms(), Ordering::Release);
                self.group.ended.store(
                    u64::from(holder.0) << 32 | u64::from(burst.0),
                    Ordering::Release,
                );
                let started_at_ms = self.ctx.clock.unix_ms(started);
                // The recording is closed after the tail grace and named
                // from the logged start; the record says where it will be.
                let recording =
                    self.ctx
                        .recorder
                        .finish(group_id, burst.0, holder.0, started_at_ms, frames);
                if frames == 0 {
                    // Still logged: frames sent with the release may trail it
                    // (the tail window), so "empty" is not known yet here.
                    self.ctx.metrics.empty_bursts.inc();
                }
                let record = Record::Burst(BurstRecord {
                    group: GroupId(group_id),
                    talker: TerminalId(holder.0),
                    burst_id: burst.0,
                    started_at_ms,
                    ended_at_ms: self.ctx.clock.unix_ms(ended),
                    priority: policy::directory_priority(priority),
                    kind: wire::burst_kind(kind),
                    outcome: if outcome == BurstEnd::Left && self.ctx.shutdown.is_cancelled() {
                        BurstOutcome::Shutdown
                    } else {
                        wire::burst_outcome(outcome, self.leaving_disconnected)
                    },
                    frames: u32::try_from(frames).unwrap_or(u32::MAX),
                    recording,
                });
                match self.release_ack.take() {
                    Some((member, request_id)) if member.terminal() == holder.0 => {
                        // The release is acknowledged once its record is on
                        // disk: what the relay acknowledged survives a crash.
                        self.ctx.log.log_durable(record, move |written| {
                            let answer = match written {
                                Ok(_) => Body::Ack(pb::Ack {}),
                                Err(error) => wire::error(
                                    pb::ErrorReason::Internal,
                                    &format!("the call log failed: {error}"),
                                ),
                            };
                            member.send(request_id, answer);
                        });
                    }
                    other => {
                        self.release_ack = other;
                        self.ctx.log.log(record);
                    }
                }
            }
            Event::EmergencyStarted { by } => {
                let at_us = self.ctx.clock.unix_us_now();
                // The declarer's request is the one being answered.
                let text = self
                    .pending
                    .as_mut()
                    .filter(|pending| pending.member.terminal() == by.0)
                    .map(|pending| std::mem::take(&mut pending.text))
                    .unwrap_or_default();
                self.emergency = Some(ActiveEmergency {
                    by: by.0,
                    at_us,
                    text,
                });
                self.ctx.log.log(Record::Emergency(EmergencyRecord {
                    group: GroupId(group_id),
                    terminal: TerminalId(by.0),
                    declared_at_ms: i64::try_from(at_us / 1000).unwrap_or(i64::MAX),
                }));
                self.publish_view();
                let state = self.emergency_state(true, 0);
                self.announce_emergency(by, state);
                // A backup call: the guards around the caller join.
                self.ctx.emergencies.declared(group_id, by.0);
            }
            Event::EmergencyCleared { by } => {
                let state = self.emergency_state(false, by.0);
                self.emergency = None;
                self.ctx
                    .log
                    .log(Record::EmergencyCleared(EmergencyClearedRecord {
                        group: GroupId(group_id),
                        by: TerminalId(by.0),
                        at_ms: i64::try_from(self.ctx.clock.unix_us_now() / 1000)
                            .unwrap_or(i64::MAX),
                    }));
                self.publish_view();
                self.announce_emergency(by, state);
                self.ctx.emergencies.cleared(group_id);
            }
        }
    }

    /// Sends `body` to `who`: as the answer to its pending request if the
    /// request is answered by this kind of message, else as an event. A
    /// refusal answers either kind of request.
    fn answer(&mut self, who: ParticipantId, body: Body, answers: Option<Answer>) {
        let answers_pending = self.pending.as_ref().is_some_and(|pending| {
            pending.member.terminal() == who.0
                && (answers == Some(pending.answer) || matches!(body, Body::FloorDenied(_)))
        });
        if answers_pending && let Some(pending) = self.pending.take() {
            // The requesting session, even if the member list changed.
            return pending.member.send(pending.request_id, body);
        }
        if let Some(member) = self.member(who.0) {
            member.send(0, body);
        }
    }

    /// Sends an unsolicited event to one member.
    fn tell(&self, who: ParticipantId, body: Body) {
        if let Some(member) = self.member(who.0) {
            member.send(0, body);
        }
    }

    /// The group's and the control room's view of an emergency change; the
    /// requester (declarer or clearing dispatcher) gets it as its answer.
    fn announce_emergency(&mut self, by: ParticipantId, state: pb::EmergencyState) {
        let event = link::frame(0, Body::EmergencyState(state.clone()));
        for link in self.group.listeners().iter() {
            if link.terminal != by.0 {
                link.send_frame(event.clone());
            }
        }
        // The other relays' members (a declarer there hears it twice: this
        // and its answer).
        self.publish_news(event.to_vec());
        self.ctx.groups.notify_control_room(self.group.id, &event);
        self.answer(by, Body::EmergencyState(state), Some(Answer::Emergency));
    }

    /// The group's emergency state as sent on the wire.
    pub(super) fn emergency_state(&self, active: bool, cleared_by: u32) -> pb::EmergencyState {
        let (declared_by, declared_at_us, text) = self
            .emergency
            .as_ref()
            .map_or((0, 0, String::new()), |e| (e.by, e.at_us, e.text.clone()));
        pb::EmergencyState {
            group_id: self.group.id,
            active,
            declared_by,
            declared_by_name: self
                .ctx
                .directory
                .name_of(TerminalId(declared_by))
                .to_owned(),
            declared_at_us,
            cleared_by,
            text,
        }
    }

    /// `FloorTaken` for the current holder, or `None` when the floor is idle
    /// (late entry: a joining terminal learns who talks).
    pub(super) fn floor_taken(&self) -> Option<pb::FloorTaken> {
        match self.floor.state() {
            FloorState::Idle => None,
            FloorState::Taken {
                holder,
                burst,
                priority,
                kind,
            }
            | FloorState::Revoking {
                holder,
                burst,
                priority,
                kind,
                ..
            } => Some(self.floor_taken_message(holder, burst.0, priority, kind)),
        }
    }

    fn floor_taken_message(
        &self,
        holder: ParticipantId,
        burst: u32,
        priority: ptt_floor::Priority,
        kind: ptt_floor::RequestKind,
    ) -> pb::FloorTaken {
        pb::FloorTaken {
            group_id: self.group.id,
            holder_terminal_id: holder.0,
            holder_name: self.ctx.directory.name_of(TerminalId(holder.0)).to_owned(),
            priority: wire::priority(priority).into(),
            burst_id: burst,
            kind: wire::kind(kind).into(),
        }
    }
}

impl GroupTask {
    /// Counts the floor's decisions for the metrics (pttd_floor_*) and
    /// observes the access time of a grant: request received by this task →
    /// granted, queue wait included.
    fn count_event(&mut self, event: &Event) {
        let metrics = &self.ctx.metrics;
        match *event {
            Event::Granted { to, .. } => {
                metrics.floor_grants.inc();
                if let Some(at) = self.requested_at.remove(&to.0) {
                    metrics.access_time.observe(at.elapsed());
                }
            }
            Event::Queued { .. } => metrics.floor_queued.inc(),
            Event::Denied { who, reason } => {
                metrics.count_denial(DenialReason::from(reason));
                // A repeated request is refused but the queued one stands.
                if reason != DenyReason::AlreadyQueued {
                    self.requested_at.remove(&who.0);
                }
            }
            Event::Expired { who } => {
                metrics.count_denial(DenialReason::QueueExpired);
                self.requested_at.remove(&who.0);
            }
            Event::Withdrawn { who } => {
                self.requested_at.remove(&who.0);
            }
            Event::Revoked { reason, .. } => {
                metrics.floor_revokes.inc();
                if matches!(reason, RevokeReason::Preempted { .. }) {
                    metrics.floor_preemptions.inc();
                }
            }
            _ => {}
        }
    }
}
