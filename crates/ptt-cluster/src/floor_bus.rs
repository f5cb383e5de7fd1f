//! Floor calls between relays: a terminal on one relay asks for the floor
//! of a group another relay owns, gives it back, or leaves.
//!
//! The owner of a group's lease ([`HeldFloor`]) takes calls on the group's
//! subject, `ptt.floor.<group>`; any relay calls there with NATS
//! request/reply. Only the owner listens, so a call reaches the one
//! arbiter of the group, which queues it beside its own terminals' requests
//! in the order it takes them in. The reply only says the owner took the
//! call, under which fencing token; the arbiter's answers go to the
//! terminal on the group's news ([`crate::NewsBus`]). An owner whose lease
//! is no longer valid replies [`FloorAnswer::NotOwner`] instead, and a
//! group nobody owns has nobody listening: the caller hears "no owner" at
//! once from NATS.
//!
//! This is transport only: the floor's rules (priorities, queue,
//! pre-emption) stay with the owner's arbiter (`ptt-floor`).

use std::time::Duration;

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::keeper::HeldFloor;
use crate::peers::{Asked, answer_on, ask};
use crate::unavailable::NatsUnavailable;

/// A member's floor rights, carried with each call so the owner's arbiter
/// can seat a terminal of another relay as that relay's directory says
/// (`ptt_floor::MemberRights` in wire values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRights {
    /// Whether the terminal may talk at all (false: listen-only).
    pub may_talk: bool,
    /// The highest priority its requests get (`ptt_floor::Priority`'s value).
    pub max_priority: u8,
    /// Whether it may pre-empt a lower-priority holder.
    pub preemptive: bool,
}

/// What a terminal of another relay asks of the owner's arbiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum FloorAction {
    /// Ask for the floor.
    Request {
        /// The priority asked for (`ptt_floor::Priority`'s value); the owner
        /// clamps it to the terminal's rights, as for its own terminals.
        priority: u8,
        /// Normal (0), broadcast (1) or emergency (2).
        kind: u8,
        /// An emergency's words for the control room.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
        /// The terminal declared an emergency (answered with the group's
        /// emergency state) rather than asked for the floor (answered with
        /// a grant, a queue place or a refusal).
        #[serde(default)]
        declares: bool,
    },
    /// Give the floor back, or withdraw a queued request.
    Release {
        /// The burst being ended, 0 for whatever the terminal holds.
        burst: u32,
        /// The last frame the terminal sent.
        last_sequence: Option<u16>,
    },
    /// A dispatcher clears the group's emergency.
    ClearEmergency,
    /// An administrator (another relay's admin API) clears the group's
    /// emergency; answered with [`FloorAnswer::Cleared`] or
    /// [`FloorAnswer::NothingToClear`].
    AdminClearEmergency,
    /// The terminal left the group or lost its relay: its request is
    /// withdrawn and a floor it holds is freed.
    Leave {
        /// The connection was lost (true) or the terminal asked (false).
        disconnected: bool,
    },
}

/// One call of a terminal of another relay, as that relay forwards it to
/// the owner. The owner's answers to the terminal do not come back on the
/// call's reply: they go out on the group's news ([`crate::NewsBus`]),
/// addressed to the terminal and its session, in the order the arbiter
/// decided them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorCall {
    /// The relay the terminal is on.
    pub relay: String,
    /// The terminal.
    pub terminal: u32,
    /// Its session there: a call from an older session is ignored.
    pub session: u64,
    /// The terminal's request id, echoed in the answer's frame (0: none).
    pub request_id: u64,
    /// Its rights in the group.
    pub rights: CallRights,
    /// What it asks.
    #[serde(flatten)]
    pub action: FloorAction,
}

/// The owner's reply to a [`FloorCall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "answer")]
pub enum FloorAnswer {
    /// The owner's arbiter took the call; what it decided goes out on the
    /// group's news.
    Accepted,
    /// The relay that got the call no longer holds a valid lease: ask
    /// again once the lease has a new owner.
    NotOwner,
    /// The administrator's clear ended the group's emergency.
    Cleared,
    /// The group was not in emergency.
    NothingToClear,
}

/// A reply with the fencing token of the lease it was given under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorReply {
    /// The owner's fencing token.
    pub token: u64,
    /// Whether the owner took the call.
    #[serde(flatten)]
    pub answer: FloorAnswer,
}

/// Why a floor call between relays failed.
#[derive(Debug, thiserror::Error)]
pub enum FloorBusError {
    /// No relay owns the group's floor (nobody listens on its subject).
    #[error("no relay owns the floor of group {group}")]
    NoOwner {
        /// The group asked for.
        group: u32,
    },
    /// The owner did not answer in time.
    #[error("the owner of group {group}'s floor did not answer within {timeout:?}")]
    TimedOut {
        /// The group asked for.
        group: u32,
        /// How long the asker waited.
        timeout: Duration,
    },
    /// A message that is not a floor call or reply.
    #[error("unreadable floor message: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// NATS could not take the request or the subscription.
    #[error(transparent)]
    Unavailable(#[from] NatsUnavailable),
}

/// This relay's end of the floor calls between relays.
#[derive(Debug, Clone)]
pub struct FloorBus {
    client: Client,
}

fn subject(group: u32) -> String {
    format!("ptt.floor.{group}")
}

impl FloorBus {
    /// The floor calls over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Hands `call` to the owner of `group`'s floor, waiting at most
    /// `timeout` for it to say it took it.
    pub async fn call(
        &self,
        group: u32,
        call: &FloorCall,
        timeout: Duration,
    ) -> Result<FloorReply, FloorBusError> {
        let payload = Bytes::from(serde_json::to_vec(call)?);
        let message = match ask(&self.client, subject(group), payload, timeout).await {
            Asked::Answered(message) => message,
            Asked::NobodyListens => return Err(FloorBusError::NoOwner { group }),
            Asked::TimedOut => return Err(FloorBusError::TimedOut { group, timeout }),
            Asked::Failed(e) => {
                return Err(
                    NatsUnavailable::new(format!("asking for group {group}'s floor"), e).into(),
                );
            }
        };
        Ok(serde_json::from_slice(&message.payload)?)
    }

    /// Starts taking `held`'s group's floor calls from the other relays.
    /// The owner decides each only while `held.may_grant()`, and answers
    /// [`FloorAnswer::NotOwner`] otherwise. Stop by dropping the
    /// [`FloorInbox`] (before releasing the lease).
    pub async fn serve(&self, held: &HeldFloor) -> Result<FloorInbox, FloorBusError> {
        let group = held.group();
        // Once the server has the subscription, no caller hears "no owner".
        let doing = format!("taking group {group}'s floor calls");
        let subscriber = answer_on(&self.client, subject(group), &doing).await?;
        Ok(FloorInbox {
            client: self.client.clone(),
            subscriber,
            token: held.token(),
            group,
        })
    }
}

/// The floor calls other relays send to this owner, one group's.
#[derive(Debug)]
pub struct FloorInbox {
    client: Client,
    subscriber: Subscriber,
    token: u64,
    group: u32,
}

/// A call waiting for the owner to take it.
#[derive(Debug)]
pub struct PendingFloorCall {
    /// What was asked.
    pub call: FloorCall,
    reply_to: Subject,
    client: Client,
    token: u64,
}

impl FloorInbox {
    /// The group whose calls these are.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// The next call; `None` once the NATS connection is gone for good.
    /// A message that is not a call (or has nowhere to answer to) is
    /// skipped: it cannot have come from a relay.
    pub async fn next(&mut self) -> Option<PendingFloorCall> {
        while let Some(message) = self.subscriber.next().await {
            let Some(reply_to) = message.reply else {
                continue;
            };
            let Ok(call) = serde_json::from_slice::<FloorCall>(&message.payload) else {
                continue;
            };
            return Some(PendingFloorCall {
                call,
                reply_to,
                client: self.client.clone(),
                token: self.token,
            });
        }
        None
    }
}

impl PendingFloorCall {
    /// Tells the asking relay whether the owner took the call.
    pub async fn answer(self, answer: FloorAnswer) -> Result<(), FloorBusError> {
        let reply = FloorReply {
            token: self.token,
            answer,
        };
        let payload = Bytes::from(serde_json::to_vec(&reply)?);
        self.client
            .publish(self.reply_to, payload)
            .await
            .map_err(|e| NatsUnavailable::new("answering a floor call", e))?;
        Ok(())
    }
}
