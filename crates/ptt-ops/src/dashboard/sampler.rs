//! The one task that computes the dashboard's snapshot once a second and
//! hands it to every browser watching.
//!
//! N browsers cost one computation: the snapshot is built and serialized
//! here once, published in a `watch` channel (newest wins: a browser that
//! falls behind skips snapshots instead of queueing them), and each
//! server-sent-events stream only copies the finished text. The chart
//! history lives here too, so a browser opening the page gets the last five
//! minutes at once.
//!
//! The task ends when the relay shuts down; dropping the channel's sender
//! ends every stream, so the ops server's graceful shutdown completes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::history::LogView;
use super::latency::{Latency, Point};
use super::snapshot::{self, Census, Snapshot};
use crate::state::OpsState;
use ptt_calllog::now_ms;

/// How often the snapshot is taken.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// What the sampler publishes each second.
#[derive(Debug)]
pub(crate) struct Published {
    /// The snapshot as JSON (the `snapshot` event).
    pub(crate) snapshot: String,
    history: Vec<Point>,
    /// The history as JSON, serialized on first demand: only when a browser
    /// connects in this second.
    history_json: OnceLock<String>,
}

impl Published {
    /// The chart history as JSON (the `history` event a new stream starts
    /// with): `{"points":[…]}`, oldest first.
    pub(crate) fn history_json(&self) -> &str {
        self.history_json.get_or_init(|| {
            #[derive(Serialize)]
            struct History<'a> {
                points: &'a [Point],
            }
            serde_json::to_string(&History {
                points: &self.history,
            })
            .unwrap_or_default()
        })
    }
}

/// The channel browsers subscribe to: `None` until the first snapshot.
pub(crate) type Feed = watch::Receiver<Option<Arc<Published>>>;

/// Starts the sampler for `shared`; it runs until the relay shuts down.
pub(crate) fn spawn(shared: Arc<OpsState>) -> Feed {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(shared, tx));
    rx
}

async fn run(shared: Arc<OpsState>, tx: watch::Sender<Option<Arc<Published>>>) {
    let census = Census::new(&shared.relay.directory);
    let mut latency = Latency::default();
    let mut log = new_log(&shared);
    let mut interval = tokio::time::interval(PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sample_us = 0;
    loop {
        tokio::select! {
            () = shared.relay.shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        let started = Instant::now();
        log = refresh_log(&shared, log).await;
        for alert in &mut log.alerts {
            alert.targets = shared
                .relay
                .alerts
                .targets(alert.id)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
            alert.not_reached = shared
                .relay
                .alerts
                .not_reached(alert.id)
                .unwrap_or_default();
            alert.not_reached.truncate(super::history::MAX_NOT_REACHED);
            let (silent, count) = shared
                .relay
                .alerts
                .silent(alert.id, super::history::MAX_SILENT_NAMED)
                .unwrap_or_default();
            alert.silent = silent
                .into_iter()
                .map(|terminal| shared.relay.terminal_name(terminal))
                .collect();
            alert.silent_count = u32::try_from(count).unwrap_or(u32::MAX);
        }
        let now_ms = now_ms();
        let (groups, clients) = snapshot::groups(&shared, Instant::now());
        latency.tick(
            now_ms / 1000,
            &shared.relay.metrics.forward_latency,
            &shared.relay.metrics.access_time,
            clients.m2e_us,
        );
        let relays = snapshot::relays(&shared, &groups);
        let snapshot = Snapshot {
            at_ms: now_ms,
            groups,
            online: census.online(&shared),
            latency: latency.headline(),
            point: latency.point(),
            clients,
            alerts: &log.alerts,
            bursts: &log.bursts,
            regroups: &log.regroups,
            private_calls: shared.relay.private_calls.active(),
            sample_us,
            relay: shared.relay.cluster_relay(),
            relays,
        };
        let json = match serde_json::to_string(&snapshot) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, "dashboard snapshot not serialized");
                continue;
            }
        };
        drop(snapshot);
        tx.send_replace(Some(Arc::new(Published {
            snapshot: json,
            history: latency.history(),
            history_json: OnceLock::new(),
        })));
        sample_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    }
    tracing::debug!("dashboard sampler stopped");
}

fn new_log(shared: &OpsState) -> LogView {
    LogView::new(
        shared.relay.log.calllog().path(),
        shared.relay.directory.clone(),
    )
}

/// Re-reads the call log's lists on a blocking thread if the log committed
/// anything since the last read.
async fn refresh_log(shared: &OpsState, mut log: LogView) -> LogView {
    let written = shared.relay.log.calllog().stats().written;
    if !log.stale(written) {
        return log;
    }
    let refreshed = tokio::task::spawn_blocking(move || {
        log.refresh(written);
        log
    })
    .await;
    match refreshed {
        Ok(log) => log,
        Err(error) => {
            tracing::error!(%error, "dashboard: call-log read failed");
            new_log(shared)
        }
    }
}
