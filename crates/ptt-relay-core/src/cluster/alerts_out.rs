//! This relay's alerts and answers, to the other relays in order through
//! one queue (see `alert::share`).

use ptt_cluster::{Cluster, SharedAlert, SharedAnswer};
use tokio::sync::mpsc;

/// Alerts and answers waiting for NATS.
const ALERTS_OUT_QUEUE: usize = 4096;

/// One alert or answer for the other relays.
#[derive(Debug)]
enum Outgoing {
    Alert(SharedAlert),
    Answer(SharedAnswer),
}

/// The queue of this relay's alerts and answers to the other relays.
#[derive(Debug)]
pub(super) struct AlertsOut {
    queue: mpsc::Sender<Outgoing>,
}

impl AlertsOut {
    /// Starts the publisher task on the current runtime; it ends when the
    /// queue is dropped.
    pub(super) fn start(cluster: Cluster) -> Self {
        let (queue, outgoing) = mpsc::channel(ALERTS_OUT_QUEUE);
        tokio::spawn(publish(cluster, outgoing));
        Self { queue }
    }

    /// Queues one of this relay's alerts.
    pub(super) fn push_alert(&self, alert: SharedAlert) {
        self.push(Outgoing::Alert(alert));
    }

    /// Queues an answer this relay took.
    pub(super) fn push_answer(&self, answer: SharedAnswer) {
        self.push(Outgoing::Answer(answer));
    }

    fn push(&self, outgoing: Outgoing) {
        if self.queue.try_send(outgoing).is_err() {
            tracing::warn!("an alert or answer not shared: NATS is not taking them");
        }
    }
}

/// Publishes queued alerts and answers in order until the queue is gone.
async fn publish(cluster: Cluster, mut outgoing: mpsc::Receiver<Outgoing>) {
    while let Some(next) = outgoing.recv().await {
        let published = match &next {
            Outgoing::Alert(alert) => cluster.alerts.publish_alert(alert).await,
            Outgoing::Answer(answer) => cluster.alerts.publish_answer(answer).await,
        };
        if let Err(error) = published {
            tracing::warn!(%error, "an alert or answer not shared with the cluster");
        }
    }
}
