//! What the ops port counts about its own clients: refused connections and requests by
//! reason, admin-token failures and the connections open, exposed on `/metrics`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Why the ops port refused or closed a connection or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A connection beyond `ops-max-connections`, answered 503 and closed.
    ConnectionLimit,
    /// A connection that had not sent a request's headers within `ops-header-timeout`.
    HeaderTimeout,
    /// A connection whose request made no progress for `ops-idle-timeout`.
    IdleTimeout,
    /// A token not checked (429): its address, or everybody, failed too often.
    TokenRateLimit,
    /// A request for a host name the port does not serve (421).
    Host,
    /// A request without the view token, or with a wrong one (401).
    ViewToken,
}

impl Refusal {
    /// Every reason, so each series exists (at 0) from the first scrape on.
    const ALL: [Refusal; 6] = [
        Refusal::ConnectionLimit,
        Refusal::HeaderTimeout,
        Refusal::IdleTimeout,
        Refusal::TokenRateLimit,
        Refusal::Host,
        Refusal::ViewToken,
    ];

    /// The `reason` label.
    fn as_str(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::IdleTimeout => "idle_timeout",
            Refusal::TokenRateLimit => "token_rate_limit",
            Refusal::Host => "host",
            Refusal::ViewToken => "view_token",
        }
    }
}

/// The ops port's own counters (relaxed atomics: figures for a scraper, not decisions).
#[derive(Debug, Default)]
pub(crate) struct OpsCounters {
    refused: [AtomicU64; Refusal::ALL.len()],
    admin_auth_failures: AtomicU64,
    connections_open: AtomicU64,
}

impl OpsCounters {
    /// Counts one refusal.
    pub(crate) fn refused(&self, reason: Refusal) {
        self.refused[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The refusals counted for `reason`.
    #[cfg(test)]
    pub(crate) fn refusals(&self, reason: Refusal) -> u64 {
        self.refused[reason as usize].load(Ordering::Relaxed)
    }

    /// Counts an admin-API request refused for a missing or wrong admin token.
    pub(crate) fn admin_auth_failed(&self) {
        self.admin_auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was taken in (`true`) or closed (`false`).
    pub(crate) fn connection(&self, opened: bool) {
        if opened {
            self.connections_open.fetch_add(1, Ordering::Relaxed);
        } else {
            self.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The counters in a scrape of `/metrics`.
    pub(crate) fn encode(&self, out: &mut DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let mut family = out.encode_descriptor(
            "pttd_ops_refused",
            "Ops-port connections and requests refused or closed, by reason.",
            None,
            MetricType::Counter,
        )?;
        for reason in Refusal::ALL {
            let n = self.refused[reason as usize].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason.as_str())])?)?;
        }
        let failures = ConstCounter::new(self.admin_auth_failures.load(Ordering::Relaxed));
        failures.encode(out.encode_descriptor(
            "pttd_ops_admin_auth_failures",
            "Admin-API requests refused for a missing or wrong admin token.",
            None,
            MetricType::Counter,
        )?)?;
        let open = ConstGauge::new(self.connections_open.load(Ordering::Relaxed) as i64);
        open.encode(out.encode_descriptor(
            "pttd_ops_connections",
            "HTTP connections the ops port holds open now.",
            None,
            MetricType::Gauge,
        )?)
    }
}
