//! Counting and logging refusals: every refusal is counted by reason
//! (`pttd_admission_refused_total{reason}`), and logged at most once per
//! reason per [`LogThrottle::INTERVAL`] with the number of lines held back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::throttle::LogThrottle;
use crate::metrics::Metrics;
use crate::metrics::admission::AdmissionRefusal;

/// Where admission reports what it refused.
#[derive(Debug)]
pub(super) struct Reporter {
    metrics: Arc<Metrics>,
    logs: [LogThrottle; AdmissionRefusal::ALL.len()],
}

impl Reporter {
    /// A reporter counting into `metrics`.
    pub(super) fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            logs: Default::default(),
        })
    }

    /// The relay's counters.
    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts (and perhaps logs) one connection from `remote` turned away
    /// for `reason`.
    pub(super) fn refused(&self, reason: AdmissionRefusal, remote: SocketAddr) {
        self.metrics.admission.count_refused(reason);
        if let Some(held_back) = self.logs[reason.index()].allow(Instant::now()) {
            let what = explain(reason);
            tracing::warn!(%remote, %reason, held_back, "{what}");
        }
    }

    /// Counts one QUIC Retry sent (not logged: it turns nobody away).
    pub(super) fn retried(&self) {
        self.metrics.admission.count_retry();
    }
}

/// The log line of a refusal; `held_back` on it counts the lines of the
/// same reason not logged since the last one.
fn explain(reason: AdmissionRefusal) -> &'static str {
    match reason {
        AdmissionRefusal::UnauthenticatedTotal => {
            "connection refused before authentication: every unauthenticated slot is taken (max-unauthenticated)"
        }
        AdmissionRefusal::PerAddress => {
            "connection refused before authentication: its address holds all its unauthenticated slots (max-unauthenticated-per-address)"
        }
        AdmissionRefusal::MaxConnections => "login refused: max-connections sessions are open",
        AdmissionRefusal::HelloTimeout => "connection closed: no hello within hello-timeout",
    }
}
