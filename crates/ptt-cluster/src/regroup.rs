//! Zone logic's regroupings shared by the relays of a cluster: when a
//! guard's emergency on one relay pulls the neighbouring compounds' guards
//! into its group, or a passing patrol picks a compound's guards up, every
//! relay applies the same change, so the guards logged in to other relays
//! join the call too.
//!
//! Core NATS on `ptt.regroup.<relay>`, one message per batch of changes,
//! in the order the deciding relay made them.

use std::sync::Arc;

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures_util::StreamExt;
use ptt_calllog::{RegroupReason, RegroupRecord};
use ptt_directory::{GroupId, TerminalId, ZoneId};
use serde::{Deserialize, Serialize};

use crate::unavailable::NatsUnavailable;

/// One change as the relays share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SharedRegroup {
    group: u32,
    terminal: u32,
    added: bool,
    reason: String,
    zone: u32,
    at_ms: i64,
}

impl SharedRegroup {
    fn of(record: &RegroupRecord) -> Self {
        Self {
            group: record.group.0,
            terminal: record.terminal.0,
            added: record.added,
            reason: record.reason.as_str().to_owned(),
            zone: record.zone.0,
            at_ms: record.at_ms,
        }
    }

    fn record(&self) -> Option<RegroupRecord> {
        Some(RegroupRecord {
            group: GroupId(self.group),
            terminal: TerminalId(self.terminal),
            added: self.added,
            reason: RegroupReason::from_name(&self.reason)?,
            zone: ZoneId(self.zone),
            at_ms: self.at_ms,
        })
    }
}

/// This relay's end of the shared regroupings.
#[derive(Debug, Clone)]
pub struct RegroupBus {
    client: Client,
    relay: Arc<str>,
}

/// The other relays' regroupings, as they arrive.
#[derive(Debug)]
pub struct RegroupFeed {
    subscriber: Subscriber,
    own_suffix: String,
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
        let doing = "sharing regroupings";
        let shared: Vec<SharedRegroup> = changes.iter().map(SharedRegroup::of).collect();
        let payload =
            Bytes::from(serde_json::to_vec(&shared).map_err(|e| NatsUnavailable::new(doing, e))?);
        self.client
            .publish(format!("ptt.regroup.{}", self.relay), payload)
            .await
            .map_err(|e| NatsUnavailable::new(doing, e))
    }

    /// Starts hearing the other relays' regroupings.
    pub async fn subscribe(&self) -> Result<RegroupFeed, NatsUnavailable> {
        let subscriber = self
            .client
            .subscribe("ptt.regroup.*")
            .await
            .map_err(|e| NatsUnavailable::new("listening to the relays' regroupings", e))?;
        Ok(RegroupFeed {
            subscriber,
            own_suffix: format!(".{}", self.relay),
        })
    }
}

impl RegroupFeed {
    /// The next batch of another relay's changes; `None` once NATS is gone
    /// for good. Unreadable batches and changes are skipped.
    pub async fn next(&mut self) -> Option<Vec<RegroupRecord>> {
        while let Some(message) = self.subscriber.next().await {
            if message.subject.as_str().ends_with(&self.own_suffix) {
                continue;
            }
            let Ok(shared) = serde_json::from_slice::<Vec<SharedRegroup>>(&message.payload) else {
                continue;
            };
            return Some(shared.iter().filter_map(SharedRegroup::record).collect());
        }
        None
    }
}
