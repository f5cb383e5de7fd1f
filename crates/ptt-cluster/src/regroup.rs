//! Zone logic's regroupings shared by the relays of a cluster: when a
//! guard's emergency on one relay pulls the neighbouring compounds' guards
//! into its group, or a passing patrol picks a compound's guards up, every
//! relay applies the same change, so the guards logged in to other relays
//! join the call too.
//!
//! Core NATS on `ptt.regroup.<relay>`, one message per batch of changes,
//! in the order the deciding relay made them.

use std::sync::Arc;

use async_nats::Client;
use ptt_calllog::RegroupRecord;

use crate::peers::{OthersFeed, publish_json};
use crate::unavailable::NatsUnavailable;

/// This relay's end of the shared regroupings.
#[derive(Debug, Clone)]
pub struct RegroupBus {
    client: Client,
    relay: Arc<str>,
}

/// The other relays' regroupings, as they arrive.
#[derive(Debug)]
pub struct RegroupFeed {
    others: OthersFeed,
}

impl RegroupBus {
    /// The regroupings of relay `relay` over `client`.
    pub fn new(client: Client, relay: &str) -> Self {
        Self {
            client,
            relay: relay.into(),
        }
    }

    /// Shares this relay's zone logic's changes with the others.
    pub async fn publish(&self, changes: &[RegroupRecord]) -> Result<(), NatsUnavailable> {
        let subject = format!("ptt.regroup.{}", self.relay);
        publish_json(&self.client, subject, &changes, "sharing regroupings").await
    }

    /// Starts hearing the other relays' regroupings.
    pub async fn subscribe(&self) -> Result<RegroupFeed, NatsUnavailable> {
        let doing = "listening to the relays' regroupings";
        let others = OthersFeed::subscribe(&self.client, "ptt.regroup.*", &self.relay, doing);
        Ok(RegroupFeed {
            others: others.await?,
        })
    }
}

impl RegroupFeed {
    /// The next batch of another relay's changes; `None` once NATS is gone
    /// for good. Unreadable batches are skipped.
    pub async fn next(&mut self) -> Option<Vec<RegroupRecord>> {
        while let Some(message) = self.others.next().await {
            let Ok(changes) = serde_json::from_slice(&message.payload) else {
                continue;
            };
            return Some(changes);
        }
        None
    }
}
