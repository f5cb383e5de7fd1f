//! Floor requests between relays: a terminal on one relay asks for the
//! floor of a group another relay owns.
//!
//! The owner of a group's lease ([`HeldFloor`]) answers on the group's
//! request subject, `ptt.floor.<group>`; any relay asks there with NATS
//! request/reply. Only the owner listens, so a request reaches the one
//! arbiter of the group, which queues it beside its own terminals' requests
//! in the order it takes them in. Every answer carries the owner's fencing
//! token, so a relay can tell an answer of an older owner from the current
//! one's. An owner whose lease is no longer valid answers
//! [`FloorAnswer::NotOwner`] instead of deciding, and a group nobody owns
//! has nobody listening: the asker hears "no owner" at once from NATS.
//!
//! This is transport only: the floor's rules (priorities, queue,
//! pre-emption) stay with the owner's arbiter (`ptt-floor`).

use std::time::Duration;

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::keeper::HeldFloor;
use crate::unavailable::NatsUnavailable;

/// A terminal's floor request, as one relay forwards it to the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorRequest {
    /// The terminal asking.
    pub terminal: u32,
    /// The priority it asks at (`ptt_floor::Priority`'s wire value); the
    /// owner clamps it to the terminal's rights, as for its own terminals.
    pub priority: u8,
    /// The relay the terminal is on, where the answer and later floor
    /// events go.
    pub relay: String,
}

/// The owner's decision on a [`FloorRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "answer")]
pub enum FloorAnswer {
    /// The terminal may talk now, in burst `burst`.
    Granted {
        /// The burst the grant starts.
        burst: u32,
    },
    /// The request waits at `position` (1 = next).
    Queued {
        /// 1-based place in the owner's queue.
        position: u32,
    },
    /// Refused, for `reason` (`ptt_floor::DenyReason`'s name).
    Denied {
        /// Why.
        reason: String,
    },
    /// The relay that got the request no longer holds a valid lease: ask
    /// again once the lease has a new owner.
    NotOwner,
}

/// An answer with the fencing token of the lease it was decided under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorReply {
    /// The owner's fencing token.
    pub token: u64,
    /// The decision.
    #[serde(flatten)]
    pub answer: FloorAnswer,
}

/// Why a floor request between relays failed.
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
    /// A message that is not a floor request or reply.
    #[error("unreadable floor message: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// NATS could not take the request or the subscription.
    #[error(transparent)]
    Unavailable(#[from] NatsUnavailable),
}

/// This relay's end of the floor requests between relays.
#[derive(Debug, Clone)]
pub struct FloorBus {
    client: Client,
}

fn subject(group: u32) -> String {
    format!("ptt.floor.{group}")
}

impl FloorBus {
    /// The floor requests over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Asks the owner of `group`'s floor to decide `request`, waiting at
    /// most `timeout` for its answer.
    pub async fn request(
        &self,
        group: u32,
        request: &FloorRequest,
        timeout: Duration,
    ) -> Result<FloorReply, FloorBusError> {
        let payload = Bytes::from(serde_json::to_vec(request)?);
        let asked = self.client.request(subject(group), payload);
        let message = match tokio::time::timeout(timeout, asked).await {
            Err(_) => return Err(FloorBusError::TimedOut { group, timeout }),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(FloorBusError::NoOwner { group });
            }
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
                return Err(FloorBusError::TimedOut { group, timeout });
            }
            Ok(Err(e)) => {
                return Err(
                    NatsUnavailable::new(format!("asking for group {group}'s floor"), e).into(),
                );
            }
            Ok(Ok(message)) => message,
        };
        Ok(serde_json::from_slice(&message.payload)?)
    }

    /// Starts taking `held`'s group's floor requests from the other relays.
    /// The owner decides each only while `held.may_grant()`, and answers
    /// [`FloorAnswer::NotOwner`] otherwise. Stop by dropping the
    /// [`FloorInbox`] (before releasing the lease).
    pub async fn serve(&self, held: &HeldFloor) -> Result<FloorInbox, FloorBusError> {
        let group = held.group();
        let subscriber = self.client.subscribe(subject(group)).await.map_err(|e| {
            NatsUnavailable::new(format!("taking group {group}'s floor requests"), e)
        })?;
        Ok(FloorInbox {
            client: self.client.clone(),
            subscriber,
            token: held.token(),
            group,
        })
    }
}

/// The floor requests other relays send to this owner, one group's.
#[derive(Debug)]
pub struct FloorInbox {
    client: Client,
    subscriber: Subscriber,
    token: u64,
    group: u32,
}

/// A request waiting for the owner's decision.
#[derive(Debug)]
pub struct PendingFloorRequest {
    /// What was asked.
    pub request: FloorRequest,
    reply_to: Subject,
    client: Client,
    token: u64,
}

impl FloorInbox {
    /// The group whose requests these are.
    pub fn group(&self) -> u32 {
        self.group
    }

    /// The next request; `None` once the NATS connection is gone for good.
    /// A message that is not a request (or has nowhere to answer to) is
    /// skipped: it cannot have come from a relay.
    pub async fn next(&mut self) -> Option<PendingFloorRequest> {
        while let Some(message) = self.subscriber.next().await {
            let Some(reply_to) = message.reply else {
                continue;
            };
            let Ok(request) = serde_json::from_slice::<FloorRequest>(&message.payload) else {
                continue;
            };
            return Some(PendingFloorRequest {
                request,
                reply_to,
                client: self.client.clone(),
                token: self.token,
            });
        }
        None
    }
}

impl PendingFloorRequest {
    /// Sends the owner's decision back to the asking relay.
    pub async fn answer(self, answer: FloorAnswer) -> Result<(), FloorBusError> {
        let reply = FloorReply {
            token: self.token,
            answer,
        };
        let payload = Bytes::from(serde_json::to_vec(&reply)?);
        self.client
            .publish(self.reply_to, payload)
            .await
            .map_err(|e| NatsUnavailable::new("answering a floor request", e))?;
        Ok(())
    }
}
