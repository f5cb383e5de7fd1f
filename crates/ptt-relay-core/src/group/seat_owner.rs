//! The owner's side of a group's floor in a cluster (see `seat`): taking
//! the seat with the lease, seating the other relays' terminals as they
//! call, telling them and their relays what the arbiter decided, and
//! stepping down the moment the lease no longer allows granting.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ptt_cluster::{
    Addressee, CallRights, FloorAction, FloorAnswer, FloorInbox, FloorNews, HeldFloor,
    PendingFloorCall,
};
use ptt_floor::{MemberRights, ParticipantId, Priority, RequestKind};
use ptt_proto::prost::Message;

use super::command::{Answer, ClusterCommand, Command};
use super::member::{Member, RemoteMember};
use super::seat_state::{Following, Owning, Seat};
use super::task::GroupTask;

impl GroupTask {
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

    /// Starts deciding: this relay holds the lease now.
    pub(super) fn take_seat(&mut self, now: Instant, held: HeldFloor, mut calls: FloorInbox) {
        if matches!(self.seat, Seat::Owning(_) | Seat::Alone) {
            // Cannot happen: only a follower asks for the lease.
            return;
        }
        let commands = self.group.commands();
        let task = tokio::spawn(async move {
            while let Some(call) = calls.next().await {
                let command = Command::Cluster(Box::new(ClusterCommand::Call(call)));
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
    /// with its own terminals (see [`Seat::Isolated`]), unless site trunking
    /// is off.
    pub(super) fn step_down(&mut self, now: Instant) {
        let Seat::Owning(owning) = &self.seat else {
            return;
        };
        let token = owning.held.token();
        let trunking = self
            .ctx
            .cluster
            .as_ref()
            .is_some_and(|cluster| cluster.link.site_trunking);
        if !self.nats_connected() && trunking {
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

    /// A call of another relay's terminal, as the owner.
    pub(super) fn take_call(&mut self, now: Instant, pending: PendingFloorCall) {
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
        if pending.call.action == FloorAction::AdminClearEmergency {
            let cleared = self.admin_clear_emergency(now);
            let answer = if cleared {
                FloorAnswer::Cleared
            } else {
                FloorAnswer::NothingToClear
            };
            return reply(pending, answer);
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
            FloorAction::Leave { .. } | FloorAction::AdminClearEmergency => {}
        }
    }

    /// Lets the terminals of relays that stopped announcing themselves
    /// leave the arbiter, as lost connections: a dead relay's queued
    /// terminal is never granted, and its talker's floor is freed (its
    /// terminals come back through another relay, with new sessions).
    pub(super) fn drop_members_of_gone_relays(&mut self, now: Instant) {
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

fn member_rights(rights: CallRights) -> MemberRights {
    MemberRights {
        may_talk: rights.may_talk,
        max_priority: Priority::try_from(rights.max_priority).unwrap_or(Priority::Normal),
        preemptive: rights.preemptive,
    }
}

fn kind_from(value: u8) -> RequestKind {
    match value {
        1 => RequestKind::Broadcast,
        2 => RequestKind::Emergency,
        _ => RequestKind::Normal,
    }
}
