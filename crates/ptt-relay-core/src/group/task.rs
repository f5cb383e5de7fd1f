//! The task that owns one group's floor: applies commands and timers to the
//! floor state machine and turns its events into messages, log records and
//! the hot path's floor gate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ptt_floor::{ClearEmergencyError, Floor, FloorPolicy, MemberRights, ParticipantId};
use ptt_proto::pb::{self, server_message::Body};
use tokio::sync::mpsc;

use super::command::{Answer, Command};
use super::context::GroupContext;
use super::member::Member;
use super::seat_state::{Seat, Taps};
use super::shared::GroupShared;
use crate::link::Link;
use crate::metrics::DenialReason;
use crate::wire;
use ptt_calllog::ADMIN_TERMINAL;

/// A request waiting for the event that answers it.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) member: Member,
    pub(super) request_id: u64,
    pub(super) answer: Answer,
    /// The declarer's text, if the request declares an emergency.
    pub(super) text: String,
}

/// The group's emergency while it is active.
#[derive(Debug, Clone)]
pub(super) struct ActiveEmergency {
    /// Who declared it.
    pub(super) by: u32,
    /// When (Unix µs).
    pub(super) at_us: u64,
    /// The declarer's words for the control room.
    pub(super) text: String,
}

/// The task owning one group's floor.
pub struct GroupTask {
    pub(super) group: Arc<GroupShared>,
    pub(super) ctx: Arc<GroupContext>,
    pub(super) floor: Floor,
    commands: mpsc::Receiver<Command>,
    /// Joined members by terminal id (the same links as `group.listeners`).
    pub(super) members: HashMap<u32, Arc<Link>>,
    /// The request the next answering event for this terminal answers.
    pub(super) pending: Option<Pending>,
    /// A release waiting for the end of its burst to be logged durably.
    pub(super) release_ack: Option<(Member, u64)>,
    /// Latest media time handed to the floor (relay-clock ms).
    media_synced_ms: u64,
    /// The emergency, while one is active.
    pub(super) emergency: Option<ActiveEmergency>,
    /// The last frame the holder says it sent, while its release is handled
    /// (the tail window forwards nothing after it).
    pub(super) released_through: Option<u16>,
    /// The burst most recently granted (for revoke messages).
    pub(super) current_burst: u32,
    /// Whether the member leaving right now lost its connection (for the
    /// idle reason members see).
    pub(super) leaving_disconnected: bool,
    /// When each open floor request reached this task, for the access time
    /// observed at its grant (kept while the request waits in the queue).
    pub(super) requested_at: HashMap<u32, Instant>,
    /// The floor rights of this relay's members (to seat them again at a
    /// fresh arbiter when the floor changes hands in a cluster).
    pub(super) rights: HashMap<u32, MemberRights>,
    /// Who decides the floor: this relay alone, or in a cluster the owner
    /// of the group's lease (`seat`).
    pub(super) seat: Seat,
    /// What the group hears of the other relays, in a cluster.
    pub(super) taps: Taps,
}

impl GroupTask {
    /// Creates the task for `group` with its floor policy.
    pub fn new(
        group: Arc<GroupShared>,
        commands: mpsc::Receiver<Command>,
        policy: FloorPolicy,
        ctx: Arc<GroupContext>,
    ) -> Self {
        let clustered = ctx.cluster.is_some();
        // In a cluster nobody decides a group until a relay takes its lease.
        group.set_decides_here(!clustered);
        Self {
            group,
            ctx,
            floor: Floor::new(policy),
            commands,
            members: HashMap::new(),
            pending: None,
            release_ack: None,
            media_synced_ms: 0,
            emergency: None,
            released_through: None,
            current_burst: 0,
            leaving_disconnected: false,
            requested_at: HashMap::new(),
            rights: HashMap::new(),
            seat: Seat::first(clustered),
            taps: Taps::default(),
        }
    }

    /// Preallocates the floor for `members` members rather than a
    /// talkgroup's share (a private call's group has two parties: its
    /// floor then takes a few hundred bytes, not tens of KiB, which counts
    /// for the hundreds of call groups a relay keeps idle).
    pub fn sized_for(mut self, members: usize) -> Self {
        self.floor = Floor::with_capacity(*self.floor.policy(), members);
        self
    }

    /// Keeps the group to this relay even in a cluster (a private call's
    /// slot: both ends are terminals of this relay).
    pub fn local_only(mut self) -> Self {
        self.seat = Seat::first(false);
        self.group.set_decides_here(true);
        self.group.set_local_only();
        self
    }

    /// Runs until `stop` is cancelled — after the sessions have ended, so
    /// their leaves (and the bursts those end) are still handled.
    pub async fn run(mut self, stop: tokio_util::sync::CancellationToken) {
        loop {
            let deadline = self.floor.poll_timeout();
            let seat_deadline = self.seat_deadline();
            tokio::select! {
                () = stop.cancelled() => break,
                command = self.commands.recv() => {
                    let Some(command) = command else { break };
                    let now = Instant::now();
                    self.sync_media(now);
                    self.handle(now, command);
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.sync_media(now);
                    self.check_lease(now);
                    self.floor.handle_timeout(now);
                }
                () = sleep_until(seat_deadline) => self.seat_tick(Instant::now()),
            }
            self.drain_events();
            self.answer_unanswered();
            self.sync_taps();
        }
        // Commands queued before the stop (the last sessions' leaves) still
        // count: the bursts they end belong in the call log.
        while let Ok(command) = self.commands.try_recv() {
            self.handle(Instant::now(), command);
            self.drain_events();
            self.answer_unanswered();
        }
        // A holder whose session did not end in time: its burst ends with
        // the relay (logged with outcome `shutdown`).
        if let Some(holder) = self.floor.holder() {
            self.floor.handle_leave(Instant::now(), holder);
            self.drain_events();
        }
    }

    /// A request whose input produced no answering event still gets its one
    /// answer: declaring an emergency in a group already in emergency
    /// changes nothing but is answered with the current state.
    fn answer_unanswered(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let member = pending.member;
        let body = match pending.answer {
            Answer::Emergency => {
                Body::EmergencyState(self.emergency_state(self.emergency.is_some(), 0))
            }
            Answer::Floor => wire::error(pb::ErrorReason::Internal, "the floor did not answer"),
        };
        member.send(pending.request_id, body);
    }

    /// Tells the floor about media the hot path forwarded since last time, so
    /// the media-inactivity timer counts from the latest frame.
    fn sync_media(&mut self, now: Instant) {
        let media_ms = self.group.last_media_ms.load(Ordering::Relaxed);
        if media_ms <= self.media_synced_ms {
            return;
        }
        self.media_synced_ms = media_ms;
        if let Some(holder) = self.floor.holder() {
            let at = self.ctx.clock.instant(media_ms).min(now);
            let _ = self.floor.handle_media(at, holder);
        }
    }

    pub(super) fn handle(&mut self, now: Instant, command: Command) {
        if matches!(
            command,
            Command::Request { .. } | Command::Release { .. } | Command::ClearEmergency { .. }
        ) {
            self.check_lease(now);
            if self.follows() {
                return self.forward(now, command);
            }
        }
        match command {
            Command::Join {
                link,
                rights,
                info,
                request_id,
            } => self.join(now, link, rights, info, request_id),
            Command::Leave {
                terminal,
                session,
                disconnected,
                request_id,
            } => self.leave(now, terminal, session, disconnected, request_id),
            Command::Request {
                answer,
                from,
                priority,
                kind,
                text,
                request_id,
            } => {
                if !self.is_current(&from) {
                    self.ctx.metrics.count_denial(DenialReason::NotMember);
                    return from.send(request_id, not_member(self.group.id));
                }
                let member = Member::Local(from);
                self.request(now, member, answer, priority, kind, text, request_id);
            }
            Command::Release {
                from,
                burst,
                last_sequence,
                request_id,
            } => {
                if !self.is_current(&from) {
                    if request_id != 0 {
                        from.send(request_id, not_member_error());
                    }
                    return;
                }
                let member = Member::Local(from);
                self.release(now, member, burst, last_sequence, request_id);
            }
            Command::ClearEmergency { from, request_id } => {
                if !self.is_current(&from) {
                    return from.send(request_id, not_member_error());
                }
                self.clear_emergency(now, Member::Local(from), request_id);
            }
            Command::AdminClearEmergency { reply } if self.follows() => {
                self.forward_admin_clear(reply);
            }
            Command::AdminClearEmergency { reply } => {
                let _ = reply.send(self.admin_clear_emergency(now));
            }
            Command::Cluster(command) => self.handle_cluster(now, *command),
        }
    }

    /// A member's floor request (the member checked as current).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn request(
        &mut self,
        now: Instant,
        member: Member,
        answer: Answer,
        priority: ptt_floor::Priority,
        kind: ptt_floor::RequestKind,
        text: String,
        request_id: u64,
    ) {
        let terminal = ParticipantId(member.terminal());
        // A queued requester asking again keeps its first arrival.
        if !self.floor.queue().any(|queued| queued.who == terminal) {
            self.requested_at.insert(terminal.0, now);
        }
        self.pending = Some(Pending {
            member,
            request_id,
            answer,
            text,
        });
        self.floor.handle_request(now, terminal, priority, kind);
    }

    /// A member's release of its burst or queued request.
    pub(super) fn release(
        &mut self,
        now: Instant,
        member: Member,
        burst: u32,
        last_sequence: Option<u16>,
        request_id: u64,
    ) {
        let terminal = ParticipantId(member.terminal());
        let state = self.floor.state();
        if burst != 0
            && state.holder() == Some(terminal)
            && state.burst().map(|b| b.0) != Some(burst)
        {
            // A late release of an earlier burst (e.g. sent before a
            // pre-emption) must not end the burst it holds now.
            if request_id != 0 {
                member.send(request_id, Body::Ack(pb::Ack {}));
            }
            return;
        }
        let holds = self.floor.holder() == Some(terminal);
        if holds && request_id != 0 {
            // Answered once the burst's record is durable.
            self.release_ack = Some((member, request_id));
        } else if request_id != 0 {
            member.send(request_id, Body::Ack(pb::Ack {}));
        }
        if holds {
            self.released_through = last_sequence;
        }
        self.floor.handle_release(now, terminal);
        self.drain_events();
        self.released_through = None;
        // A release that ended no burst (the floor had just been revoked)
        // is answered at once.
        if let Some((member, request_id)) = self.release_ack.take() {
            member.send(request_id, Body::Ack(pb::Ack {}));
        }
    }

    /// A dispatcher member clears the group's emergency.
    pub(super) fn clear_emergency(&mut self, now: Instant, member: Member, request_id: u64) {
        match self
            .floor
            .handle_clear_emergency(now, ParticipantId(member.terminal()))
        {
            Ok(()) => {
                self.pending = Some(Pending {
                    member,
                    request_id,
                    answer: Answer::Emergency,
                    text: String::new(),
                });
            }
            Err(ClearEmergencyError::NotInEmergency) => {
                member.send(
                    request_id,
                    Body::EmergencyState(self.emergency_state(false, 0)),
                );
            }
            Err(error) => {
                member.send(
                    request_id,
                    wire::error(pb::ErrorReason::Forbidden, &error.to_string()),
                );
            }
        }
    }

    /// Clears the emergency for the admin API. The floor lets only a
    /// dispatcher member clear, so the admin joins for this one input as a
    /// dispatcher under the id no terminal has, and leaves at once: the events
    /// name it while it is a member (nobody is told as it has no link), and
    /// its leave emits nothing as it neither holds nor queues.
    pub(super) fn admin_clear_emergency(&mut self, now: Instant) -> bool {
        let admin = ParticipantId(ADMIN_TERMINAL.0);
        if self.members.contains_key(&admin.0) {
            tracing::error!("a terminal with id 0, reserved for the admin API, is joined here");
            return false;
        }
        self.floor.handle_join(now, admin, MemberRights::DISPATCHER);
        let cleared = self.floor.handle_clear_emergency(now, admin).is_ok();
        self.drain_events();
        self.floor.handle_leave(now, admin);
        cleared
    }

    /// Whether `link` is the session through which its terminal is a member
    /// of this group now (not a replaced session, not a non-member).
    fn is_current(&self, link: &Link) -> bool {
        self.members
            .get(&link.terminal)
            .is_some_and(|member| member.session == link.session)
    }

    fn join(
        &mut self,
        now: Instant,
        link: Arc<Link>,
        rights: MemberRights,
        mut info: pb::GroupInfo,
        request_id: u64,
    ) {
        let terminal = link.terminal;
        if self
            .members
            .get(&terminal)
            .is_some_and(|member| member.session > link.session)
        {
            // A late join from a session that has since been replaced.
            return;
        }
        self.floor.handle_join(now, ParticipantId(terminal), rights);
        self.members.insert(terminal, link.clone());
        self.rights.insert(terminal, rights);
        self.publish_listeners();
        info.joined = true;
        let floor = self.announced_floor();
        let emergency = self
            .emergency
            .is_some()
            .then(|| self.emergency_state(true, 0));
        if request_id == 0 {
            // An automatic join at log-in has no request to answer; the
            // terminal still learns who talks (late entry) and any emergency.
            if let Some(taken) = floor {
                link.send(0, Body::FloorTaken(taken));
            }
            if let Some(state) = emergency {
                link.send(0, Body::EmergencyState(state));
            }
            return;
        }
        link.send(
            request_id,
            Body::JoinOk(pb::JoinOk {
                group: Some(info),
                floor,
                emergency,
            }),
        );
    }

    fn leave(
        &mut self,
        now: Instant,
        terminal: u32,
        session: u64,
        disconnected: bool,
        request_id: u64,
    ) {
        let Some(link) = self.members.get(&terminal) else {
            return;
        };
        if link.session != session {
            // A stale leave from a connection that was replaced.
            return;
        }
        let link = link.clone();
        self.leaving_disconnected = disconnected;
        self.floor.handle_leave(now, ParticipantId(terminal));
        self.drain_events();
        self.leaving_disconnected = false;
        self.members.remove(&terminal);
        self.rights.remove(&terminal);
        self.publish_listeners();
        if self.follows() {
            self.forward_leave(terminal, session, disconnected);
        }
        if request_id != 0 {
            link.send(
                request_id,
                Body::LeaveOk(pb::LeaveOk {
                    group_id: self.group.id,
                }),
            );
        }
    }

    fn publish_listeners(&self) {
        let listeners: Vec<Arc<Link>> = self.members.values().cloned().collect();
        self.group.listeners.store(Arc::new(listeners));
    }
}

/// The refusal of a floor request from a terminal that is not a member here.
fn not_member(group_id: u32) -> Body {
    Body::FloorDenied(pb::FloorDenied {
        group_id,
        reason: pb::FloorDenyReason::NotMember.into(),
    })
}

fn not_member_error() -> Body {
    wire::error(pb::ErrorReason::NotMember, "not joined to this group")
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
