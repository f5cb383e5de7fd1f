//! A follower's side of a group's floor in a cluster (see `seat`): handing
//! this relay's members' floor commands to the owner (taking the lease when
//! nobody holds it), and following the owner's news.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ptt_cluster::{
    CallRights, FloorAction, FloorAnswer, FloorBusError, FloorCall, FloorInbox, FloorNews,
    HeldFloor, Taken,
};
use ptt_floor::{MemberRights, RequestKind};
use ptt_proto::pb::{self, server_message::Body};
use ptt_proto::prost::Message;

use super::command::{Answer, ClusterCommand, Command};
use super::context::GroupCluster;
use super::seat_state::Seat;
use super::shared::GroupShared;
use super::task::GroupTask;
use crate::link::Link;
use crate::wire;

/// How long one call to the owner may take.
const CALL_WITHIN: Duration = Duration::from_secs(1);

/// How long a relay keeps looking for the owner of a floor that is owned
/// but not answering (a lease outlives a dead owner by at most its ttl).
const FIND_OWNER_FOR: Duration = Duration::from_secs(3);

/// Why a press is refused while NATS is away and the relay may not serve
/// its terminals alone (`site-trunking = false`).
const NO_SITE_TRUNKING: &str = "NATS is out of reach and site trunking is off";

/// Pause between two looks for the owner.
const LOOK_AGAIN_AFTER: Duration = Duration::from_millis(50);

impl GroupTask {
    /// Hands a local member's floor command to the owner, after the same
    /// membership check the arbiter would make; without NATS, this relay
    /// serves its own terminals alone and handles it here.
    pub(super) fn forward(&mut self, now: Instant, command: Command) {
        let Some(cluster) = self.ctx.cluster.clone() else {
            return;
        };
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
        if !cluster.link.cluster.is_connected() {
            if !cluster.link.site_trunking {
                return unreachable_owner(&from, request_id, NO_SITE_TRUNKING);
            }
            self.isolate(now);
            return self.handle(now, command);
        }
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

    /// Asks the owner to clear the group's emergency for this relay's admin
    /// API; `reply` gets whether there was one to clear (false if no relay
    /// answers for the floor in time).
    pub(super) fn forward_admin_clear(&self, reply: tokio::sync::oneshot::Sender<bool>) {
        let Some(cluster) = self.ctx.cluster.clone() else {
            return;
        };
        let call = FloorCall {
            relay: cluster.link.relay().to_owned(),
            terminal: ptt_calllog::ADMIN_TERMINAL.0,
            session: 0,
            request_id: 0,
            rights: call_rights(MemberRights::LISTEN_ONLY),
            action: FloorAction::AdminClearEmergency,
        };
        let group = self.group.id;
        tokio::spawn(async move {
            let until = Instant::now() + FIND_OWNER_FOR;
            let floor = &cluster.link.cluster.floor;
            let cleared = loop {
                match floor.call(group, &call, CALL_WITHIN).await {
                    Ok(answer) if answer.answer != FloorAnswer::NotOwner => {
                        break answer.answer == FloorAnswer::Cleared;
                    }
                    // Nobody decides the floor: nobody is in emergency.
                    Err(FloorBusError::NoOwner { .. }) => break false,
                    // The owner's lease is running out: ask its successor.
                    _ if Instant::now() < until => {
                        tokio::time::sleep(LOOK_AGAIN_AFTER).await;
                    }
                    _ => break false,
                }
            };
            let _ = reply.send(cleared);
        });
    }

    /// The owner's news, as a follower (an owner hearing a newer owner
    /// steps down first).
    pub(super) fn hear_news(&mut self, now: Instant, news: FloorNews) {
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

    /// The rights a member of this relay joined with.
    fn rights_of(&self, terminal: u32) -> MemberRights {
        self.rights
            .get(&terminal)
            .copied()
            .unwrap_or(MemberRights::LISTEN_ONLY)
    }
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
                    group.command(Command::Cluster(Box::new(owned))).await;
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
    if !cluster.link.site_trunking {
        return unreachable_owner(&from, call.request_id, NO_SITE_TRUNKING);
    }
    let then = Box::new(command);
    group
        .command(Command::Cluster(Box::new(ClusterCommand::Isolated {
            then,
        })))
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

fn call_rights(rights: MemberRights) -> CallRights {
    CallRights {
        may_talk: rights.may_talk,
        max_priority: u8::from(rights.max_priority),
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
