//! The other relays' call-log records, stored here: any relay's ops API and
//! call history answer for the whole cluster.

use std::sync::Arc;
use std::time::Duration;

use ptt_calllog::{CallLog, Origin};
use ptt_cluster::CallLogFeed;
use tokio::sync::Semaphore;

use super::link::ClusterLink;
use crate::metrics::Metrics;

/// Pause before following the call log again when NATS would not.
const FOLLOW_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Records being written at once: the call log's writer commits them in
/// one transaction, so catching up after a restart is not one fsync each.
const STORING_AT_ONCE: usize = 256;

/// Stores the other relays' records in `calllog` for as long as the relay
/// runs, acknowledging each once committed, so one that did not make it is
/// handed over again (and one handed over twice is stored once).
pub async fn store_other_relays_records(
    cluster: Arc<ClusterLink>,
    calllog: CallLog,
    metrics: Arc<Metrics>,
) {
    loop {
        match cluster.cluster.calllog.follow().await {
            Ok(feed) => follow(feed, &calllog, &metrics).await,
            Err(error) => tracing::warn!(%error, "cannot follow the cluster's call log"),
        }
        tokio::time::sleep(FOLLOW_AGAIN_AFTER).await;
    }
}

async fn follow(mut feed: CallLogFeed, calllog: &CallLog, metrics: &Arc<Metrics>) {
    let storing = Arc::new(Semaphore::new(STORING_AT_ONCE));
    while let Some(pending) = feed.next().await {
        let Ok(slot) = storing.clone().acquire_owned().await else {
            return;
        };
        let origin = Origin {
            relay: pending.entry.relay.clone(),
            id: pending.entry.id.clone(),
        };
        let written = calllog.record_replica(pending.entry.record.clone(), origin);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match written.await {
                Ok(new) => {
                    if new {
                        metrics.cluster_calllog_in.inc();
                    }
                    if let Err(error) = pending.done().await {
                        tracing::debug!(%error, "call-log record stored, not acknowledged");
                    }
                }
                // Not acknowledged: NATS hands it over again.
                Err(error) => tracing::error!(%error, "another relay's call-log record not stored"),
            }
        });
    }
}
