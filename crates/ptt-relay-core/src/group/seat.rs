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
//!
//! This file moves a group between its seats and keeps its subscriptions;
//! the owner's side is in `seat_owner`, a follower's in `seat_follower`,
//! the seats themselves in `seat_state`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_floor::ParticipantId;
use ptt_proto::pb::{self, server_message::Body};
use tokio::task::AbortHandle;

use super::command::{ClusterCommand, Command};
use super::context::GroupCluster;
use super::member::Member;
use super::seat_state::{Following, Seat};
use super::shared::GroupShared;
use super::task::GroupTask;
use crate::link::{self};

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

    /// A local floor command as the owner: a lease that no longer allows
    /// granting makes this relay step down first.
    pub(super) fn check_lease(&mut self, now: Instant) {
        if let Seat::Owning(owning) = &self.seat
            && !owning.held.may_grant()
        {
            self.step_down(now);
        }
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
    pub(super) fn isolate(&mut self, now: Instant) {
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

    pub(super) fn nats_connected(&self) -> bool {
        self.ctx
            .cluster
            .as_ref()
            .is_some_and(|c| c.link.cluster.is_connected())
    }

    /// A fresh arbiter with this relay's members seated, the gate closed.
    pub(super) fn reset_floor(&mut self, now: Instant) {
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
    pub(super) fn close_gate(&mut self, reason: pb::FloorIdleReason) {
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
                // The tap's end stops counting it; the next announcement says
                // so, and the talkers' relays stop publishing then.
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
            let command = Command::Cluster(Box::new(ClusterCommand::News(item)));
            if commands.send(command).await.is_err() {
                break;
            }
        }
    })
    .abort_handle()
}
