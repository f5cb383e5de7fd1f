//! Admin actions shared by every relay of a cluster: what an administrator
//! does on one relay's admin API (disable a terminal, change a group's
//! members) reaches the others, including a relay that was down at the time.
//!
//! A JetStream stream, [`ADMIN_STREAM`], on file storage, holds every
//! relay's actions on `ptt.admin.<relay>`; each relay follows it with a
//! durable consumer of its own (`admin-<relay>`), acknowledging an action
//! once it has stored and applied it, so NATS hands it the actions it has
//! not applied yet, after a restart too. A relay's own actions are skipped:
//! it applied them before it published them.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use ptt_calllog::AdminAction;
use serde::{Deserialize, Serialize};

use crate::kept::{self, Feed, Pending, Written};
use crate::unavailable::NatsUnavailable;

/// The stream of admin actions.
pub const ADMIN_STREAM: &str = "PTT_ADMIN";

/// How long actions are kept for a relay that is down: past it, a relay
/// returning must be given the actions again by hand.
pub const ADMIN_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// One admin action as the relays share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminEntry {
    /// The relay whose admin API took it.
    pub relay: String,
    /// Who did it, as that relay's call log says.
    pub by: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// What was done.
    #[serde(flatten)]
    pub action: AdminAction,
}

/// This relay's end of the shared admin actions.
#[derive(Debug, Clone)]
pub struct AdminLog {
    jetstream: jetstream::Context,
    relay: Arc<str>,
}

/// An action of another relay, to acknowledge once stored and applied.
pub type PendingAdmin = Pending<AdminEntry>;

/// The actions of the other relays, in the order they were published.
pub type AdminFeed = Feed<AdminEntry>;

impl Written for AdminEntry {
    fn relay(&self) -> &str {
        &self.relay
    }
}

impl AdminLog {
    /// Opens (creating it if this is the first relay) the stream of admin
    /// actions as relay `relay`.
    pub async fn open(jetstream: jetstream::Context, relay: &str) -> Result<Self, NatsUnavailable> {
        let doing = "opening the stream of admin actions";
        let kept = kept::Kept {
            age: ADMIN_KEPT,
            bytes: -1,
        };
        kept::open_stream(&jetstream, ADMIN_STREAM, "ptt.admin.*", kept, doing).await?;
        Ok(Self {
            jetstream,
            relay: relay.into(),
        })
    }

    /// Shares one of this relay's actions; returns once NATS has stored it.
    pub async fn publish(&self, entry: &AdminEntry) -> Result<(), NatsUnavailable> {
        let doing = "sharing an admin action";
        let payload =
            Bytes::from(serde_json::to_vec(entry).map_err(|e| NatsUnavailable::new(doing, e))?);
        self.jetstream
            .publish(format!("ptt.admin.{}", self.relay), payload)
            .await
            .map_err(|e| NatsUnavailable::new(doing, e))?
            .await
            .map_err(|e| NatsUnavailable::new(doing, e))?;
        Ok(())
    }

    /// Follows the other relays' actions this relay has not acknowledged
    /// yet, from the oldest.
    pub async fn follow(&self) -> Result<AdminFeed, NatsUnavailable> {
        let doing = "following the admin actions";
        let durable = format!("admin-{}", self.relay);
        Feed::follow(
            &self.jetstream,
            ADMIN_STREAM,
            durable,
            self.relay.clone(),
            doing,
        )
        .await
    }
}
