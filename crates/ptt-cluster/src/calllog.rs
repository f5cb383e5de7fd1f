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

use async_nats::jetstream::{self, consumer, context::Publish};
use bytes::Bytes;
use futures_util::StreamExt;
use ptt_calllog::Record;
use serde::{Deserialize, Serialize};

use crate::kept;
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
#[derive(Debug)]
pub struct PendingRecord {
    /// What was recorded, where.
    pub shared: SharedRecord,
    message: jetstream::Message,
}

impl PendingRecord {
    /// Tells NATS this relay has stored the record: it is not handed over
    /// again.
    pub async fn done(self) -> Result<(), NatsUnavailable> {
        self.message
            .ack()
            .await
            .map_err(|e| NatsUnavailable::new("acknowledging a call-log record", e))
    }
}

/// The other relays' records, in the order they were published.
pub struct CallLogFeed {
    messages: consumer::pull::Stream,
    relay: Arc<str>,
}

impl std::fmt::Debug for CallLogFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLogFeed")
            .field("relay", &self.relay)
            .finish()
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
        let messages =
            kept::follow_durable(&self.jetstream, CALLLOG_STREAM, durable, doing).await?;
        Ok(CallLogFeed {
            messages,
            relay: self.relay.clone(),
        })
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

impl CallLogFeed {
    /// The next record of another relay; `None` once NATS is gone for good.
    /// This relay's own records and unreadable ones are acknowledged and
    /// skipped.
    pub async fn next(&mut self) -> Option<PendingRecord> {
        while let Some(message) = self.messages.next().await {
            let Ok(message) = message else {
                continue;
            };
            match serde_json::from_slice::<SharedRecord>(&message.payload) {
                Ok(shared) if *shared.relay != *self.relay => {
                    return Some(PendingRecord { shared, message });
                }
                // This relay's own, or written by a version this one cannot read.
                Ok(_) | Err(_) => {}
            }
            let _ = message.ack().await;
        }
        None
    }
}
