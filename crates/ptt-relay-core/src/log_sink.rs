//! The relay's way into the call log: queue a record without waiting, or queue it and act
//! once it is on disk, with the waiting done by tasks shutdown can drain.

use ptt_calllog::{CallLog, CallLogError, Record};
use std::sync::Arc;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;

/// Hands records to the call log's writer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogSink {
    calllog: CallLog,
    /// Waits for durable log writes, so shutdown flushes after them.
    durable: TaskTracker,
    metrics: Arc<Metrics>,
}

impl LogSink {
    /// A sink into `calllog` that counts dropped records in `metrics`.
    pub fn new(calllog: CallLog, metrics: Arc<Metrics>) -> Self {
        Self {
            calllog,
            durable: TaskTracker::new(),
            metrics,
        }
    }

    /// Queues a call-log record without waiting; a full queue drops it and counts the
    /// drop.
    pub fn log(&self, record: Record) {
        if self.calllog.record(record).is_err() {
            self.metrics.log_dropped.inc();
        }
    }

    /// Queues a record and runs `then` once it is committed to disk (or the write
    /// failed), without blocking the caller.
    pub fn log_durable(
        &self,
        record: Record,
        then: impl FnOnce(Result<i64, CallLogError>) + Send + 'static,
    ) {
        let committed = self.calllog.record_durable(record);
        self.durable.spawn(async move { then(committed.await) });
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
