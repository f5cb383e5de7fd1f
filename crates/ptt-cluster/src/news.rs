//! A group's floor news: what the owner's arbiter tells terminals, for the
//! relays they are on.
//!
//! The owner publishes every message its arbiter sends to members of a
//! group once, on `ptt.news.<group>`, whether it is for all of them (who
//! talks now, the floor is idle, an emergency) or for one terminal (your
//! grant, your place in the queue). Every relay with members of the group
//! listens and hands each message to its own members; a message for one
//! terminal is handed only by the relay that terminal's session is on. One
//! publisher on one subject, so every relay sees the owner's decisions in
//! the order they were made.
//!
//! News for every member also carries the floor's gate (who may talk, in which
//! burst), how long the owner's lease still lets it decide, and the current
//! holder's announcement, so a relay that only
//! listens can check its own talkers' voice and tell a late joiner who
//! talks without asking the owner. The fencing token tells news of a
//! former owner (a lower token) from the current one's.
//!
//! The payload of the messages themselves is opaque here: framed wire
//! messages the relay core builds.

use std::sync::Arc;

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::unavailable::NatsUnavailable;

/// One terminal's session, the addressee of news for it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addressee {
    /// The terminal.
    pub terminal: u32,
    /// Its session on its relay.
    pub session: u64,
}

/// One message of a group's owner to the relays with members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorNews {
    /// The owning relay's id.
    pub relay: String,
    /// The owner's fencing token.
    pub token: u64,
    /// The floor gate after this news (`holder << 32 | burst`, 0 when
    /// idle), on news for every member; `None` on news for one terminal,
    /// which changes no gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<u64>,
    /// For one terminal's session, or (`None`) every member of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Addressee>,
    /// The framed message to hand over; empty for news that only refreshes
    /// the gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message: Vec<u8>,
    /// On news for every member: how long from its sending the owner may
    /// still grant (its lease's own deadline). A relay that hears nothing
    /// newer closes its gate then, before any other relay can own the
    /// floor; `None` on news for one terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_ms: Option<u64>,
    /// The holder's announcement while the floor is taken (an encoded
    /// `FloorTaken`), empty while it is idle: what a late joiner is told.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken: Vec<u8>,
}

/// Why news could not be sent or heard.
#[derive(Debug, thiserror::Error)]
pub enum NewsError {
    /// A message that is not floor news.
    #[error("unreadable floor news: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// NATS could not take the news or the subscription.
    #[error(transparent)]
    Unavailable(#[from] NatsUnavailable),
}

/// This relay's end of the groups' floor news.
#[derive(Debug, Clone)]
pub struct NewsBus {
    client: Client,
    relay: Arc<str>,
}

fn subject(group: u32) -> String {
    format!("ptt.news.{group}")
}

impl NewsBus {
    /// The news of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Publishes `news` of `group` to every relay with members.
    pub async fn publish(&self, group: u32, news: &FloorNews) -> Result<(), NewsError> {
        let payload = Bytes::from(serde_json::to_vec(news)?);
        self.client
            .publish(subject(group), payload)
            .await
            .map_err(|e| NatsUnavailable::new(format!("sending group {group}'s floor news"), e))?;
        Ok(())
    }

    /// Starts hearing `group`'s news from its owner, whichever relay it is
    /// (this relay's own news is left out). Dropping it stops it.
    pub async fn subscribe(&self, group: u32) -> Result<GroupNews, NewsError> {
        let subscriber = self.client.subscribe(subject(group)).await.map_err(|e| {
            NatsUnavailable::new(format!("listening to group {group}'s floor news"), e)
        })?;
        Ok(GroupNews {
            subscriber,
            relay: self.relay.clone(),
        })
    }
}

/// One group's floor news from its owner, as it arrives.
#[derive(Debug)]
pub struct GroupNews {
    subscriber: Subscriber,
    relay: Arc<str>,
}

impl GroupNews {
    /// The next news of another relay; `None` once the connection to NATS is
    /// gone for good. Unreadable messages are skipped: they did not come
    /// from a relay.
    pub async fn next(&mut self) -> Option<FloorNews> {
        while let Some(message) = self.subscriber.next().await {
            let Ok(news) = serde_json::from_slice::<FloorNews>(&message.payload) else {
                continue;
            };
            if *news.relay != *self.relay {
                return Some(news);
            }
        }
        None
    }
}
