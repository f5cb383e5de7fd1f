//! The call log shared by every relay of a cluster: the records a relay
//! writes (bursts it decided, its terminals' logins, alerts, emergencies)
//! reach every other relay's SQLite, so any relay's ops API answers for the
//! whole district, and a record acknowledged by a relay that then dies is
//! not lost with its disk.
//!
//! Each relay publishes its records on `ptt.calllog.<relay>` to the
//! JetStream stream [`CALLLOG_STREAM`] (file storage), each with an id
//! unique in the cluster as its `Nats-Msg-Id`, so a record published again
//! after a lost acknowledgement is stored once. Each relay follows the
//! stream with a durable consumer of its own (`calllog-<relay>`) and
//! acknowledges a record once its own call log has committed it; it skips
//! its own records, which it wrote before it published them.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::Publish};
use bytes::Bytes;
use ptt_calllog::Record;
use serde::{Deserialize, Serialize};

use crate::kept::{self, Feed, Pending, Written};
use crate::unavailable::NatsUnavailable;

/// The stream of call-log records.
pub const CALLLOG_STREAM: &str = "PTT_CALLLOG";

/// How long records are kept for a relay that is down, or a new relay that
/// joins; past it, each relay's own SQLite is the only copy.
pub const CALLLOG_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Most bytes of records the stream keeps on NATS's disk (the oldest go
/// first): a district's month of bursts, logins and alerts is well under it
/// (about 300 bytes a record).
pub const CALLLOG_MAX_BYTES: i64 = 4 << 30;

/// One record as the relays share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRecord {
    /// The relay that wrote it.
    pub relay: String,
    /// Its id in the cluster: unique per relay, run and record.
    pub id: String,
    /// What was recorded.
    pub record: Record,
}

/// This relay's end of the shared call log.
#[derive(Debug, Clone)]
pub struct CallLogStream {
    jetstream: jetstream::Context,
    relay: Arc<str>,
}

/// A record of another relay, to acknowledge once stored.
pub type PendingRecord = Pending<SharedRecord>;

/// The other relays' records, in the order they were published.
pub type CallLogFeed = Feed<SharedRecord>;

impl Written for SharedRecord {
    fn relay(&self) -> &str {
        &self.relay
    }
}

impl CallLogStream {
    /// Opens (creating it if this is the first relay) the stream of
    /// call-log records as relay `relay`.
    pub async fn open(jetstream: jetstream::Context, relay: &str) -> Result<Self, NatsUnavailable> {
        let doing = "opening the stream of call-log records";
        let kept = kept::Kept {
            age: CALLLOG_KEPT,
            bytes: CALLLOG_MAX_BYTES,
        };
        kept::open_stream(&jetstream, CALLLOG_STREAM, "ptt.calllog.*", kept, doing).await?;
        Ok(Self {
            jetstream,
            relay: relay.into(),
        })
    }

    /// Shares `records` of this relay, in order; returns how many of them
    /// NATS has stored, from the first, and why it stopped if not all were.
    /// Publishing them again is harmless (their ids are remembered).
    pub async fn publish(&self, records: &[SharedRecord]) -> (usize, Option<NatsUnavailable>) {
        let doing = "sharing a call-log record";
        let subject = format!("ptt.calllog.{}", self.relay);
        let mut acks = Vec::with_capacity(records.len());
        for shared in records {
            let payload = match serde_json::to_vec(shared) {
                Ok(payload) => Bytes::from(payload),
                Err(e) => return (acks.len(), Some(NatsUnavailable::new(doing, e))),
            };
            let publish = Publish::build().payload(payload).message_id(&shared.id);
            match self.jetstream.send_publish(subject.clone(), publish).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    return (stored(acks).await.0, Some(NatsUnavailable::new(doing, e)));
                }
            }
        }
        let (done, error) = stored(acks).await;
        (done, error.map(|e| NatsUnavailable::new(doing, e)))
    }

    /// Follows the other relays' records this relay has not acknowledged
    /// yet, from the oldest.
    pub async fn follow(&self) -> Result<CallLogFeed, NatsUnavailable> {
        let doing = "following the shared call log";
        let durable = format!("calllog-{}", self.relay);
        Feed::follow(
            &self.jetstream,
            CALLLOG_STREAM,
            durable,
            self.relay.clone(),
            doing,
        )
        .await
    }
}

/// Waits for each acknowledgement in order: how many were stored before the
/// first that was not, and why that one was not.
async fn stored(
    acks: Vec<jetstream::context::PublishAckFuture>,
) -> (usize, Option<jetstream::context::PublishError>) {
    let mut done = 0;
    for ack in acks {
        match ack.await {
            Ok(_) => done += 1,
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}
