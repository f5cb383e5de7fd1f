//! The relay's way into the call log: queue a record without waiting, or queue it and act
//! once it is on disk, with the waiting done by tasks shutdown can drain. In a cluster,
//! every record is also handed to the other relays (see [`LogShare`]).

use ptt_calllog::{CallLog, CallLogError, Record};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;

/// Longest an acknowledged record waits for the cluster to hold it before it is
/// acknowledged anyway (with NATS up it takes about a millisecond). With NATS away the
/// record is acknowledged at once, from this relay's disk alone, and shared when NATS
/// returns if the relay still runs then: the queue to NATS is in memory, so a record
/// of a relay restarted meanwhile stays in that relay's call log only.
pub const SHARED_WITHIN: Duration = Duration::from_secs(1);

/// Where a relay of a cluster hands the records it logs, so that every relay's call log
/// holds them (set by the cluster; none when the relay runs alone).
pub trait LogShare: Send + Sync + std::fmt::Debug {
    /// Shares `record` without waiting; `stored`, if given, is answered once the cluster
    /// holds the record, or dropped if it will not soon (NATS away).
    fn share(&self, record: Record, stored: Option<oneshot::Sender<()>>);
}

/// Hands records to the call log's writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogSink {
    calllog: CallLog,
    /// Waits for durable log writes, so shutdown flushes after them.
    durable: TaskTracker,
    metrics: Arc<Metrics>,
    share: Arc<OnceLock<Arc<dyn LogShare>>>,
}

impl LogSink {
    /// A sink into `calllog` that counts dropped records in `metrics`.
    pub fn new(calllog: CallLog, metrics: Arc<Metrics>) -> Self {
        Self {
            calllog,
            durable: TaskTracker::new(),
            metrics,
            share: Arc::default(),
        }
    }

    /// Hands every record logged from now on to the relay's cluster too; set once, later
    /// calls are ignored.
    pub fn share_with(&self, share: Arc<dyn LogShare>) {
        let _ = self.share.set(share);
    }

    /// Queues a call-log record without waiting; a full queue drops it and counts the
    /// drop.
    pub fn log(&self, record: Record) {
        if let Some(share) = self.share_for(&record) {
            share.share(record.clone(), None);
        }
        if self.calllog.record(record).is_err() {
            self.metrics.log_dropped.inc();
        }
    }

    /// Queues a record and runs `then` once it is committed to disk (or the write
    /// failed), without blocking the caller. In a cluster, a committed record is then
    /// shared and `then` waits (at most [`SHARED_WITHIN`]) until the cluster holds it,
    /// so what the relay acknowledges survives the loss of its disk; a record this
    /// relay failed to store is not shared.
    pub fn log_durable(
        &self,
        record: Record,
        then: impl FnOnce(Result<i64, CallLogError>) + Send + 'static,
    ) {
        let share = self
            .share_for(&record)
            .map(|share| (share.clone(), record.clone()));
        let committed = self.calllog.record_durable(record);
        self.durable.spawn(async move {
            let written = committed.await;
            if let (Ok(_), Some((share, record))) = (&written, share) {
                let (stored, held) = oneshot::channel();
                share.share(record, Some(stored));
                let _ = tokio::time::timeout(SHARED_WITHIN, held).await;
            }
            then(written)
        });
    }

    /// Where `record` goes besides this relay's call log: the cluster, if any,
    /// except admin actions, which have a stream of their own every relay
    /// applies (`ptt_cluster::AdminLog`).
    fn share_for(&self, record: &Record) -> Option<&Arc<dyn LogShare>> {
        self.share
            .get()
            .filter(|_| !matches!(record, Record::Admin(_)))
    }

    /// The call log itself: its path (for a reader) and its queue counters.
    pub fn calllog(&self) -> &CallLog {
        &self.calllog
    }

    /// Waits until every `then` of [`Self::log_durable`] queued so far has run; new ones
    /// are not awaited.
    pub async fn drain_durable(&self) {
        self.durable.close();
        self.durable.wait().await;
    }
}
