//! This relay's call-log records, handed to the cluster's stream so that
//! every relay's call log holds them (see [`ptt_cluster::CallLogStream`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ptt_calllog::{Record, now_ms};
use ptt_cluster::{Cluster, SharedRecord};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Records waiting for NATS; beyond it (NATS away for long) a record is
/// kept in this relay's call log only, counted.
pub(super) const CALLLOG_OUT_QUEUE: usize = 65_536;

/// Records published before their acknowledgements are awaited.
const PUBLISH_BATCH: usize = 256;

/// Pause before publishing again what NATS did not store.
const PUBLISH_AGAIN_AFTER: Duration = Duration::from_millis(500);

type Waiter = Option<oneshot::Sender<()>>;

/// The queue of this relay's records to the cluster, and their ids.
#[derive(Debug)]
pub(super) struct CallLogOut {
    queue: mpsc::Sender<(SharedRecord, Waiter)>,
    /// What makes ids unique across this relay's runs: its start, in Unix ms.
    run: i64,
    next: AtomicU64,
    cluster: Cluster,
    metrics: Arc<Metrics>,
}

impl CallLogOut {
    /// Starts the publisher task on the current runtime; it ends when the
    /// queue is dropped.
    pub(super) fn start(cluster: Cluster, metrics: Arc<Metrics>) -> Self {
        let (queue, records) = mpsc::channel(CALLLOG_OUT_QUEUE);
        tokio::spawn(publish(cluster.clone(), records, metrics.clone()));
        Self {
            queue,
            run: now_ms(),
            next: AtomicU64::new(0),
            cluster,
            metrics,
        }
    }

    /// Queues one of this relay's records; `stored` is answered once NATS
    /// holds it, or dropped at once while NATS is away.
    pub(super) fn share(&self, record: Record, stored: Waiter) {
        let relay = &self.cluster.relay;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let shared = SharedRecord {
            relay: relay.to_string(),
            id: format!("{relay}.{}.{n}", self.run),
            record,
        };
        let stored = stored.filter(|_| self.cluster.is_connected());
        if self.queue.try_send((shared, stored)).is_err() {
            self.metrics.cluster_calllog_dropped.inc();
        }
    }
}

/// Publishes queued records in order, in batches, until the queue is gone;
/// a record NATS did not store is published again (with its id, so it is
/// stored once) until it is.
async fn publish(
    cluster: Cluster,
    mut queue: mpsc::Receiver<(SharedRecord, Waiter)>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let (records, mut waiters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let mut from = 0;
        while from < records.len() {
            let (stored, error) = cluster.calllog.publish(&records[from..]).await;
            for waiter in waiters[from..from + stored].iter_mut() {
                if let Some(waiter) = waiter.take() {
                    let _ = waiter.send(());
                }
            }
            metrics.cluster_calllog_out.add(stored as u64);
            from += stored;
            if let Some(error) = error {
                tracing::warn!(%error, waiting = records.len() - from, "call-log records not shared yet");
                tokio::time::sleep(PUBLISH_AGAIN_AFTER).await;
            }
        }
    }
}
