//! A group's floor in a cluster: which relay decides it, and how the other
//! relays follow (issue 16; ARCHITECTURE.md §7).
//!
//! Exactly one relay decides a group's floor: the one holding the group's
//! lease ([`HeldFloor`]). Its task is the group's one arbiter; it seats the
//! terminals of other relays as they call ([`FloorCall`]) and tells them
//! what it decided on the group's news, with the gate (who may talk) on
//! every message for all members. Every other relay with members follows:
//! it hands its members' floor commands to the owner, mirrors the gate for
//! its own talkers' voice, and hands the owner's messages to its members.
//!
//! A relay takes the lease when one of its members needs the floor and
//! nobody owns it. It stops deciding the moment its lease no longer allows
//! granting (the lease's deadline is checked before every floor command
//! and slept on), ending the burst it granted, so a second relay can only
//! decide after the first has stopped. Every piece of news for all members
//! says how long the owner's lease still lets it decide; a follower that
//! hears nothing newer closes its gate then, so no relay forwards a talker
//! granted by a dead owner once another relay may grant someone else.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_cluster::{
    Addressee, CallRights, FloorAction, FloorAnswer, FloorBusError, FloorCall, FloorInbox,
    FloorNews, HeldFloor, PendingFloorCall, Taken,
};
use ptt_floor::{MemberRights, ParticipantId, Priority, RequestKind};
use ptt_proto::pb::{self, server_message::Body};
use ptt_proto::prost::Message;
use tokio::task::AbortHandle;

use super::command::{Answer, ClusterCommand, Command};
use super::context::GroupCluster;
use super::member::{Member, RemoteMember};
use super::seat_state::{Following, Owning, Seat};
use super::shared::GroupShared;
use super::task::GroupTask;
use crate::link::{self, Link};
use crate::wire;

/// How long one call to the owner may take.
const CALL_WITHIN: Duration = Duration::from_secs(1);

/// How long a relay keeps looking for the owner of a floor that is owned
/// but not answering (a lease outlives a dead owner by at most its ttl).
const FIND_OWNER_FOR: Duration = Duration::from_secs(3);

/// Pause between two looks for the owner.
const LOOK_AGAIN_AFTER: Duration = Duration::from_millis(50);

/// How often an owner looks whether the relays of its remote members are
/// still there.
const MEMBERS_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often an isolated relay looks whether NATS is back.
const LOOK_FOR_NATS_EVERY: Duration = Duration::from_millis(250);

impl GroupTask {
    /// Whether this relay's members' floor commands go to another relay.
    pub(super) fn follows(&self) -> bool {
        matches!(self.seat, Seat::Following(_))
    }

    /// The member `terminal` of this relay, or of another relay seated here
    /// while this relay decides.
    pub(super) fn member(&self, terminal: u32) -> Option<Member> {
        if let Some(link) = self.members.get(&terminal) {
            return Some(Member::Local(link.clone()));
        }
        match &self.seat {
            Seat::Owning(owning) => owning.remote.get(&terminal).cloned().map(Member::Remote),
            _ => None,
        }
    }

    /// Who talks, for a member joining now: the arbiter's state, or the
    /// owner's last announcement on a follower.
    pub(super) fn announced_floor(&self) -> Option<pb::FloorTaken> {
        match &self.seat {
            Seat::Following(following) => following.taken.clone(),
            _ => self.floor_taken(),
        }
    }

    /// Sends a framed message to every member: this relay's, and while it
    /// decides, the other relays' through the news, with the gate.
    pub(super) fn broadcast(&self, frame: &Bytes) {
        self.group.broadcast(frame);
        self.publish_news(frame.to_vec());
    }

    /// The owner's news for every member with the gate and the holder's
    /// announcement; `message` empty to re-announce the gate only.
    pub(super) fn publish_news(&self, message: Vec<u8>) {
        let (Seat::Owning(owning), Some(cluster)) = (&self.seat, &self.ctx.cluster) else {
            return;
        };
        let taken = self
            .floor_taken()
            .map(|taken| taken.encode_to_vec())
            .unwrap_or_default();
        let valid_ms = owning.held.grantable_until().map_or(0, |until| {
            u64::try_from(until.saturating_duration_since(Instant::now()).as_millis())
                .unwrap_or(u64::MAX)
        });
        cluster.link.offer_news(
            self.group.id,
            FloorNews {
                relay: cluster.link.relay().to_owned(),
                token: owning.held.token(),
                gate: Some(self.group.gate.load(Ordering::Acquire)),
                valid_ms: Some(valid_ms),
                to: None,
                message,
                taken,
            },
        );
    }

    /// The gate news ahead of a grant to a terminal of another relay, so
    /// that its relay lets its first frame through.
    pub(super) fn publish_gate_before_grant(&self, to: u32) {
        if let Seat::Owning(owning) = &self.seat
            && owning.remote.contains_key(&to)
            && !self.members.contains_key(&to)
        {
            self.publish_news(Vec::new());
        }
    }

    /// A local floor command as the owner: a lease that no longer allows
    /// granting makes this relay step down first.
    pub(super) fn check_lease(&mut self, now: Instant) {
        if let Seat::Owning(owning) = &self.seat
            && !owning.held.may_grant()
        {
            self.step_down(now);
        }
    }

    /// Hands a local member's floor command to the owner, after the same
    /// membership check the arbiter would make; without NATS, this relay
    /// serves its own terminals alone and handles it here.
    pub(super) fn forward(&mut self, now: Instant, command: Command) {
        let Some(cluster) = self.ctx.cluster.clone() else {
            return;
        };
        if !cluster.link.cluster.is_connected() {
            self.isolate(now);
            return self.handle(now, command);
        }
        let (from, request_id, action) = match &command {
            Command::Request {
                from,
                priority,
                kind,
                text,
                request_id,
                answer,
            } => (
                from.clone(),
                *request_id,
                FloorAction::Request {
                    priority: u8::from(*priority),
                    kind: kind_value(*kind),
                    text: text.clone(),
                    declares: *answer == Answer::Emergency,
                },
            ),
            Command::Release {
                from,
                burst,
                last_sequence,
                request_id,
            } => (
                from.clone(),
                *request_id,
                FloorAction::Release {
                    burst: *burst,
                    last_sequence: *last_sequence,
                },
            ),
            Command::ClearEmergency { from, request_id } => {
                (from.clone(), *request_id, FloorAction::ClearEmergency)
            }
            _ => return,
        };
        let current = self
            .members
            .get(&from.terminal)
            .is_some_and(|member| member.session == from.session);
        if !current {
            return refuse_non_member(&from, request_id, &action, self.group.id);
        }
        let call = FloorCall {
            relay: cluster.link.relay().to_owned(),
            terminal: from.terminal,
            session: from.session,
            request_id,
            rights: call_rights(self.rights_of(from.terminal)),
            action,
        };
        tokio::spawn(call_owner(cluster, self.group.clone(), call, from, command));
    }

    /// Tells the owner that a member of this relay left: its request is
    /// withdrawn and a floor it holds freed. Nobody waits for it.
    pub(super) fn forward_leave(&self, terminal: u32, session: u64, disconnected: bool) {
        let Some(cluster) = self.ctx.cluster.clone() else {
            return;
        };
        let call = FloorCall {
            relay: cluster.link.relay().to_owned(),
            terminal,
            session,
            request_id: 0,
            rights: call_rights(MemberRights::LISTEN_ONLY),
            action: FloorAction::Leave { disconnected },
        };
        let group = self.group.id;
        tokio::spawn(async move {
            // Nobody owning the floor has nothing to withdraw.
            let _ = cluster
                .link
                .cluster
                .floor
                .call(group, &call, CALL_WITHIN)
                .await;
        });
    }

    /// What another relay or one of this group's own helpers says.
    pub(super) fn handle_cluster(&mut self, now: Instant, command: ClusterCommand) {
        match command {
            ClusterCommand::Owned { held, calls, then } => {
                self.take_seat(now, held, calls);
                self.handle(now, *then);
            }
            ClusterCommand::Isolated { then } => {
                if self.follows() {
                    self.isolate(now);
                }
                self.handle(now, *then);
            }
            ClusterCommand::Call(pending) => self.take_call(now, pending),
            ClusterCommand::News(news) => self.hear_news(now, news),
        }
    }

    /// Serves this relay's own terminals alone: NATS is out of reach, so
    /// neither the owner nor a lease can be had. Whatever the cluster
    /// decided ends here (the gate closes); the other relays' terminals
    /// neither hear nor are heard until NATS is back.
    fn isolate(&mut self, now: Instant) {
        tracing::warn!(
            group = self.group.id,
            "NATS out of reach: this relay serves the group's terminals here alone"
        );
        self.seat = Seat::Isolated;
        self.reset_floor(now);
        self.group.set_decides_here(true);
    }

    /// Back in the cluster once NATS is and the local floor is idle (a burst
    /// on the air here is not cut for it).
    fn rejoin(&mut self, now: Instant) {
        if !self.nats_connected() || self.floor.holder().is_some() || self.floor.queue_len() > 0 {
            return;
        }
        tracing::info!(
            group = self.group.id,
            "NATS is back: the group rejoins the cluster"
        );
        self.seat = Seat::Following(Following::new(0));
        self.group.set_decides_here(false);
        self.reset_floor(now);
    }

    /// Starts deciding: this relay holds the lease now.
    fn take_seat(&mut self, now: Instant, held: HeldFloor, mut calls: FloorInbox) {
        if matches!(self.seat, Seat::Owning(_) | Seat::Alone) {
            // Cannot happen: only a follower asks for the lease.
            return;
        }
        let commands = self.group.commands();
        let task = tokio::spawn(async move {
            while let Some(call) = calls.next().await {
                let command = Command::Cluster(ClusterCommand::Call(call));
                if commands.send(command).await.is_err() {
                    break;
                }
            }
        });
        tracing::info!(
            group = self.group.id,
            token = held.token(),
            "this relay decides the group's floor"
        );
        // Whatever a former owner decided ended with its lease.
        self.reset_floor(now);
        self.seat = Seat::Owning(Owning {
            held,
            calls: task.abort_handle(),
            remote: HashMap::new(),
            refresh_at: now,
            members_checked_at: now,
        });
        self.group.set_decides_here(true);
    }

    /// Stops deciding: the lease no longer allows granting. A burst this
    /// relay granted ends here (its record logged); queued requests go
    /// with the arbiter. Cut off from NATS, the relay rather goes on alone
    /// with its own terminals (see [`Seat::Isolated`]).
    pub(super) fn step_down(&mut self, now: Instant) {
        let Seat::Owning(owning) = &self.seat else {
            return;
        };
        let token = owning.held.token();
        if !self.nats_connected() {
            return self.isolate_keeping_floor(now);
        }
        tracing::warn!(
            group = self.group.id,
            token,
            "this relay no longer decides the group's floor: its lease ran out"
        );
        if let Some(holder) = self.floor.holder() {
            self.floor.handle_leave(now, holder);
            self.drain_events();
        }
        self.seat = Seat::Following(Following::new(token));
        self.group.set_decides_here(false);
        self.reset_floor(now);
    }

    /// The owner cut off from NATS: its own terminals keep the floor as it
    /// stands (a burst on the air here goes on), the other relays'
    /// terminals leave its arbiter, which they can no longer reach.
    fn isolate_keeping_floor(&mut self, now: Instant) {
        let Seat::Owning(owning) = std::mem::replace(&mut self.seat, Seat::Isolated) else {
            return;
        };
        tracing::warn!(
            group = self.group.id,
            token = owning.held.token(),
            "NATS out of reach: this relay serves the group's terminals here alone"
        );
        for terminal in owning.remote.keys() {
            if !self.members.contains_key(terminal) {
                self.floor.handle_leave(now, ParticipantId(*terminal));
            }
        }
        drop(owning);
        self.drain_events();
    }

    fn nats_connected(&self) -> bool {
        self.ctx
            .cluster
            .as_ref()
            .is_some_and(|c| c.link.cluster.is_connected())
    }

    /// A fresh arbiter with this relay's members seated, the gate closed.
    fn reset_floor(&mut self, now: Instant) {
        self.floor = ptt_floor::Floor::new(*self.floor.policy());
        for (&terminal, &rights) in &self.rights {
            self.floor.handle_join(now, ParticipantId(terminal), rights);
        }
        self.pending = None;
        if let Some((member, request_id)) = self.release_ack.take() {
            member.send(request_id, Body::Ack(pb::Ack {}));
        }
        self.requested_at.clear();
        self.emergency = None;
        self.close_gate(pb::FloorIdleReason::HolderDisconnected);
        self.drain_events();
    }

    /// Closes the gate if it is open and tells this relay's members the
    /// floor is idle (the burst's tail window opens as for a release).
    fn close_gate(&mut self, reason: pb::FloorIdleReason) {
        let was = self.group.gate.swap(0, Ordering::AcqRel);
        if was == 0 {
            return;
        }
        self.group.set_tail_end(None);
        self.group
            .ended_at_ms
            .store(self.ctx.clock.now_ms(), Ordering::Release);
        self.group.ended.store(was, Ordering::Release);
        if let Seat::Following(following) = &mut self.seat {
            following.taken = None;
        }
        self.group.broadcast(&link::frame(
            0,
            Body::FloorIdle(pb::FloorIdle {
                group_id: self.group.id,
                reason: reason.into(),
                burst_id: was as u32,
            }),
        ));
    }

    /// A call of another relay's terminal, as the owner.
    fn take_call(&mut self, now: Instant, pending: PendingFloorCall) {
        let Some(cluster) = self.ctx.cluster.clone() else {
            return;
        };
        let Seat::Owning(owning) = &self.seat else {
            return reply(pending, FloorAnswer::NotOwner);
        };
        if !owning.held.may_grant() {
            reply(pending, FloorAnswer::NotOwner);
            return self.step_down(now);
        }
        let token = owning.held.token();
        let call = pending.call.clone();
        reply(pending, FloorAnswer::Accepted);
        let Seat::Owning(owning) = &mut self.seat else {
            return;
        };
        let terminal = call.terminal;
        let seated = owning.remote.get(&terminal).map(|m| m.at.session);
        if seated.is_some_and(|session| session > call.session) {
            // A call from a session that has since been replaced.
            return;
        }
        if let FloorAction::Leave { disconnected } = call.action {
            if seated == Some(call.session) {
                owning.remote.remove(&terminal);
                if !self.members.contains_key(&terminal) {
                    self.leaving_disconnected = disconnected;
                    self.floor.handle_leave(now, ParticipantId(terminal));
                    self.drain_events();
                    self.leaving_disconnected = false;
                }
            }
            return;
        }
        let member = RemoteMember {
            at: Addressee {
                terminal,
                session: call.session,
            },
            relay: Arc::from(call.relay.as_str()),
            group: self.group.id,
            token,
            cluster: cluster.link.clone(),
        };
        owning.remote.insert(terminal, member.clone());
        self.floor
            .handle_join(now, ParticipantId(terminal), member_rights(call.rights));
        let member = Member::Remote(member);
        match call.action {
            FloorAction::Request {
                priority,
                kind,
                text,
                declares,
            } => {
                let answer = if declares {
                    Answer::Emergency
                } else {
                    Answer::Floor
                };
                let priority = Priority::try_from(priority).unwrap_or(Priority::Normal);
                self.request(
                    now,
                    member,
                    answer,
                    priority,
                    kind_from(kind),
                    text,
                    call.request_id,
                );
            }
            FloorAction::Release {
                burst,
                last_sequence,
            } => self.release(now, member, burst, last_sequence, call.request_id),
            FloorAction::ClearEmergency => self.clear_emergency(now, member, call.request_id),
            FloorAction::Leave { .. } => {}
        }
    }

    /// The owner's news, as a follower (an owner hearing a newer owner
    /// steps down first).
    fn hear_news(&mut self, now: Instant, news: FloorNews) {
        if let Seat::Owning(owning) = &self.seat
            && news.token > owning.held.token()
        {
            self.step_down(now);
        }
        let Seat::Following(following) = &mut self.seat else {
            return;
        };
        if news.token < following.token {
            // A former owner's last words.
            return;
        }
        following.token = news.token;
        following.heard_at = now;
        if let Some(valid_ms) = news.valid_ms {
            following.gate_until = now + Duration::from_millis(valid_ms);
        }
        if let Some(gate) = news.gate {
            following.taken = pb::FloorTaken::decode(&news.taken[..])
                .ok()
                .filter(|_| !news.taken.is_empty());
            if gate == 0 {
                let ended = self.group.gate.swap(0, Ordering::AcqRel);
                if ended != 0 {
                    self.group.set_tail_end(None);
                    self.group
                        .ended_at_ms
                        .store(self.ctx.clock.now_ms(), Ordering::Release);
                    self.group.ended.store(ended, Ordering::Release);
                }
            } else {
                self.group.gate.store(gate, Ordering::Release);
            }
        }
        if news.message.is_empty() {
            return;
        }
        let frame = Bytes::from(news.message);
        match news.to {
            None => self.group.broadcast(&frame),
            Some(at) => {
                if let Some(link) = self.members.get(&at.terminal)
                    && link.session == at.session
                {
                    link.send_frame(frame);
                }
            }
        }
    }

    /// When the seat next needs a look: the owner's lease deadline and gate
    /// re-announcement, the deadline of a follower's open gate, an isolated
    /// relay's look for NATS.
    pub(super) fn seat_deadline(&self) -> Option<Instant> {
        let open = self.group.gate.load(Ordering::Acquire) != 0;
        match &self.seat {
            Seat::Alone => None,
            Seat::Owning(owning) => {
                let until = owning.held.grantable_until().unwrap_or_else(Instant::now);
                let until = if open {
                    until.min(owning.refresh_at)
                } else {
                    until
                };
                Some(if owning.remote.is_empty() {
                    until
                } else {
                    until.min(owning.members_checked_at + MEMBERS_CHECK_EVERY)
                })
            }
            Seat::Following(following) => open.then_some(following.gate_until),
            Seat::Isolated => Some(Instant::now() + LOOK_FOR_NATS_EVERY),
        }
    }

    /// Lets the terminals of relays that stopped announcing themselves
    /// leave the arbiter, as lost connections: a dead relay's queued
    /// terminal is never granted, and its talker's floor is freed (its
    /// terminals come back through another relay, with new sessions).
    fn drop_members_of_gone_relays(&mut self, now: Instant) {
        let (Seat::Owning(owning), Some(cluster)) = (&mut self.seat, &self.ctx.cluster) else {
            return;
        };
        let gone: Vec<u32> = owning
            .remote
            .values()
            .filter(|member| cluster.link.elsewhere.gone(&member.relay))
            .map(|member| member.at.terminal)
            .collect();
        for terminal in &gone {
            owning.remote.remove(terminal);
        }
        for terminal in gone {
            if self.members.contains_key(&terminal) {
                continue;
            }
            tracing::warn!(
                group = self.group.id,
                terminal,
                "its relay stopped announcing itself: the terminal leaves the floor"
            );
            self.leaving_disconnected = true;
            self.floor.handle_leave(now, ParticipantId(terminal));
            self.drain_events();
            self.leaving_disconnected = false;
        }
    }

    /// Acts on [`Self::seat_deadline`].
    pub(super) fn seat_tick(&mut self, now: Instant) {
        let refresh = self.refresh_every();
        let open = self.group.gate.load(Ordering::Acquire) != 0;
        match &mut self.seat {
            Seat::Alone => {}
            Seat::Isolated => self.rejoin(now),
            Seat::Owning(owning) => {
                if !owning.held.may_grant() {
                    return self.step_down(now);
                }
                if now >= owning.members_checked_at + MEMBERS_CHECK_EVERY {
                    owning.members_checked_at = now;
                    self.drop_members_of_gone_relays(now);
                }
                let Seat::Owning(owning) = &mut self.seat else {
                    return;
                };
                if open && now >= owning.refresh_at {
                    owning.refresh_at = now + refresh;
                    self.publish_news(Vec::new());
                }
            }
            Seat::Following(following) => {
                if open && now >= following.gate_until {
                    tracing::warn!(
                        group = self.group.id,
                        "the floor's owner went silent mid-burst: gate closed at its deadline"
                    );
                    self.close_gate(pb::FloorIdleReason::HolderDisconnected);
                }
            }
        }
    }

    /// Keeps the group's subscriptions to what the other relays say: the
    /// news while it has members here, the voice while it has members here
    /// or decides the floor (the holder's media keeps its timers going).
    pub(super) fn sync_taps(&mut self) {
        let Some(cluster) = &self.ctx.cluster else {
            return;
        };
        if matches!(self.seat, Seat::Alone) {
            return;
        }
        let here = !self.members.is_empty();
        let want_voice = here || matches!(self.seat, Seat::Owning(_));
        if want_voice != self.taps.voice.is_some() {
            match self.taps.voice.take() {
                Some(tap) => tap.abort(),
                None => self.taps.voice = Some(cluster.voice.hear(self.group.clone())),
            }
        }
        if here != self.taps.news.is_some() {
            match self.taps.news.take() {
                Some(tap) => tap.abort(),
                None => self.taps.news = Some(hear_news(cluster, self.group.clone())),
            }
        }
    }

    /// The rights a member of this relay joined with.
    fn rights_of(&self, terminal: u32) -> MemberRights {
        self.rights
            .get(&terminal)
            .copied()
            .unwrap_or(MemberRights::LISTEN_ONLY)
    }

    fn refresh_every(&self) -> Duration {
        self.ctx
            .cluster
            .as_ref()
            .map_or(Duration::from_secs(1), |c| {
                c.link.cluster.leases.config().renew_every()
            })
    }
}

/// Subscribes to `group`'s news and hands each to its task.
fn hear_news(cluster: &GroupCluster, group: Arc<GroupShared>) -> AbortHandle {
    let bus = cluster.link.cluster.news.clone();
    tokio::spawn(async move {
        let mut news = match bus.subscribe(group.id).await {
            Ok(news) => news,
            Err(error) => {
                tracing::warn!(group = group.id, %error, "cannot hear the floor's news");
                return;
            }
        };
        let commands = group.commands();
        while let Some(item) = news.next().await {
            let command = Command::Cluster(ClusterCommand::News(item));
            if commands.send(command).await.is_err() {
                break;
            }
        }
    })
    .abort_handle()
}

/// Hands `call` to the owner, taking the lease when nobody owns it; the
/// terminal hears the owner's answer on the news, or an error here. With
/// NATS out of reach the command goes back to the group, which serves this
/// relay's terminals alone.
async fn call_owner(
    cluster: GroupCluster,
    group: Arc<GroupShared>,
    call: FloorCall,
    from: Arc<Link>,
    command: Command,
) {
    let until = Instant::now() + FIND_OWNER_FOR;
    let floor = &cluster.link.cluster.floor;
    let failure = loop {
        match floor.call(group.id, &call, CALL_WITHIN).await {
            Ok(reply) if reply.answer == FloorAnswer::Accepted => return,
            // The owner's lease is running out: ask its successor.
            Ok(_) => {}
            Err(FloorBusError::NoOwner { .. }) => match take_floor(&cluster, group.id).await {
                Ok(Some((held, calls))) => {
                    let then = Box::new(command);
                    let owned = ClusterCommand::Owned { held, calls, then };
                    group.command(Command::Cluster(owned)).await;
                    return;
                }
                // Another relay took it first: call that one.
                Ok(None) => {}
                Err(error) => break error,
            },
            Err(error) => break error.to_string(),
        }
        if Instant::now() >= until {
            break "no relay answers for it".to_owned();
        }
        tokio::time::sleep(LOOK_AGAIN_AFTER).await;
    };
    if cluster.link.cluster.is_connected() {
        return unreachable_owner(&from, call.request_id, &failure);
    }
    let then = Box::new(command);
    group
        .command(Command::Cluster(ClusterCommand::Isolated { then }))
        .await;
}

/// Takes `group`'s lease and starts taking calls, or `None` if another
/// relay holds it.
async fn take_floor(
    cluster: &GroupCluster,
    group: u32,
) -> Result<Option<(HeldFloor, FloorInbox)>, String> {
    let leases = &cluster.link.cluster.leases;
    match leases.take(group).await.map_err(|e| e.to_string())? {
        Taken::Owned(lease) => {
            let held = HeldFloor::keep(leases.clone(), lease);
            let calls = cluster
                .link
                .cluster
                .floor
                .serve(&held)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Some((held, calls)))
        }
        Taken::Held(_) => Ok(None),
    }
}

fn unreachable_owner(from: &Link, request_id: u64, why: &str) {
    tracing::warn!(
        terminal = from.terminal,
        why,
        "the floor's owner did not take a call"
    );
    if request_id != 0 {
        from.send(
            request_id,
            wire::error(
                pb::ErrorReason::Internal,
                &format!("the relay deciding this floor is unreachable: {why}"),
            ),
        );
    }
}

/// The answer a non-member's floor command gets, as the arbiter gives it.
fn refuse_non_member(from: &Link, request_id: u64, action: &FloorAction, group_id: u32) {
    let body = match action {
        FloorAction::Request { .. } => Body::FloorDenied(pb::FloorDenied {
            group_id,
            reason: pb::FloorDenyReason::NotMember.into(),
        }),
        _ if request_id == 0 => return,
        _ => wire::error(pb::ErrorReason::NotMember, "not joined to this group"),
    };
    from.send(request_id, body);
}

/// Replies to a call (the reply carries the lease's token) without
/// waiting for NATS.
fn reply(pending: PendingFloorCall, answer: FloorAnswer) {
    tokio::spawn(async move {
        if let Err(error) = pending.answer(answer).await {
            tracing::debug!(%error, "a floor call's reply was not sent");
        }
    });
}

fn call_rights(rights: MemberRights) -> CallRights {
    CallRights {
        may_talk: rights.may_talk,
        max_priority: u8::from(rights.max_priority),
        preemptive: rights.preemptive,
    }
}

fn member_rights(rights: CallRights) -> MemberRights {
    MemberRights {
        may_talk: rights.may_talk,
        max_priority: Priority::try_from(rights.max_priority).unwrap_or(Priority::Normal),
        preemptive: rights.preemptive,
    }
}

fn kind_value(kind: RequestKind) -> u8 {
    match kind {
        RequestKind::Normal => 0,
        RequestKind::Broadcast => 1,
        RequestKind::Emergency => 2,
    }
}

fn kind_from(value: u8) -> RequestKind {
    match value {
        1 => RequestKind::Broadcast,
        2 => RequestKind::Emergency,
        _ => RequestKind::Normal,
    }
}
