//! Who is where: each relay announces, every second, the terminals it
//! serves and the groups whose floors it decides, on `ptt.presence.<relay>`.
//!
//! Core NATS, nothing stored: an announcement is worth only its second, and
//! a relay that stopped announcing is gone (killed, cut off) after a few
//! missed ones, which is what the other relays need to know about it. The
//! ops API of any relay answers for the cluster from these.

use std::sync::Arc;

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::unavailable::NatsUnavailable;

/// One relay's announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPresence {
    /// The relay.
    pub relay: String,
    /// The terminals logged in to it now.
    pub terminals: Vec<u32>,
    /// The groups whose floors it decides now (holds the lease of).
    pub decides: Vec<u32>,
}

/// This relay's end of the presence announcements.
#[derive(Debug, Clone)]
pub struct PresenceBus {
    client: Client,
    relay: Arc<str>,
}

/// The other relays' announcements, as they arrive.
#[derive(Debug)]
pub struct PresenceFeed {
    subscriber: Subscriber,
    relay: Arc<str>,
}

impl PresenceBus {
    /// The announcements of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Announces this relay's terminals and floors.
    pub async fn announce(
        &self,
        terminals: Vec<u32>,
        decides: Vec<u32>,
    ) -> Result<(), NatsUnavailable> {
        let doing = "announcing this relay's terminals";
        let presence = RelayPresence {
            relay: self.relay.to_string(),
            terminals,
            decides,
        };
        let payload =
            Bytes::from(serde_json::to_vec(&presence).map_err(|e| NatsUnavailable::new(doing, e))?);
        self.client
            .publish(format!("ptt.presence.{}", self.relay), payload)
            .await
            .map_err(|e| NatsUnavailable::new(doing, e))
    }

    /// Starts hearing the other relays' announcements.
    pub async fn subscribe(&self) -> Result<PresenceFeed, NatsUnavailable> {
        let subscriber = self
            .client
            .subscribe("ptt.presence.*")
            .await
            .map_err(|e| NatsUnavailable::new("listening to the relays' announcements", e))?;
        Ok(PresenceFeed {
            subscriber,
            relay: self.relay.clone(),
        })
    }
}

impl PresenceFeed {
    /// The next announcement of another relay; `None` once NATS is gone for
    /// good. Unreadable ones are skipped.
    pub async fn next(&mut self) -> Option<RelayPresence> {
        while let Some(message) = self.subscriber.next().await {
            match serde_json::from_slice::<RelayPresence>(&message.payload) {
                Ok(presence) if *presence.relay != *self.relay => return Some(presence),
                Ok(_) | Err(_) => {}
            }
        }
        None
    }
}
