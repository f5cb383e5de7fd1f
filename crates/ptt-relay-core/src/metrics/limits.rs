//! Counters of the per-session request limits: requests refused because a
//! terminal sent a family of requests faster than any real terminal does
//! (`pttd_rate_limited_total{family}`), and sessions cut off because they
//! kept on after being refused (`pttd_sessions_cut_off_total{reason="rate"}`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A family of control requests sharing one rate limit per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestFamily {
    /// Floor requests (not releases, not emergencies).
    Floor,
    /// Joining and leaving groups.
    Membership,
    /// Position reports.
    Location,
    /// Status messages.
    Status,
    /// A dispatcher's alerts (roll calls).
    Alert,
    /// Answers to alerts.
    AlertAck,
    /// Private call setup, accept, reject and end.
    PrivateCall,
    /// Receive-quality reports.
    Quality,
    /// Requests the relay answers alone: ping, a repeated `Hello`, an empty
    /// request.
    Other,
}

impl RequestFamily {
    /// All families, in the order of [`RequestFamily::index`].
    pub const ALL: [RequestFamily; 9] = [
        RequestFamily::Floor,
        RequestFamily::Membership,
        RequestFamily::Location,
        RequestFamily::Status,
        RequestFamily::Alert,
        RequestFamily::AlertAck,
        RequestFamily::PrivateCall,
        RequestFamily::Quality,
        RequestFamily::Other,
    ];

    /// Stable label for logs, metrics and the refusal's detail.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestFamily::Floor => "floor",
            RequestFamily::Membership => "membership",
            RequestFamily::Location => "location",
            RequestFamily::Status => "status",
            RequestFamily::Alert => "alert",
            RequestFamily::AlertAck => "alert_ack",
            RequestFamily::PrivateCall => "private_call",
            RequestFamily::Quality => "quality",
            RequestFamily::Other => "other",
        }
    }

    /// The family's place in [`RequestFamily::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RequestFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request limits refused, readable at any time (relaxed atomics).
#[derive(Debug, Default)]
pub struct RateCounters {
    refused: [AtomicU64; RequestFamily::ALL.len()],
    cut_off: AtomicU64,
}

impl RateCounters {
    /// Counts one request refused with `RATE_LIMITED`.
    #[inline]
    pub fn count_refusal(&self, family: RequestFamily) {
        self.refused[family.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of `family` refused since start.
    pub fn refused(&self, family: RequestFamily) -> u64 {
        self.refused[family.index()].load(Ordering::Relaxed)
    }

    /// Counts one session cut off for going on after its refusals.
    #[inline]
    pub fn count_cut_off(&self) {
        self.cut_off.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions cut off for their request rate since start (also counted in
    /// the total of every cut-off, `Metrics::cut_off`).
    pub fn cut_off(&self) -> u64 {
        self.cut_off.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_per_family() {
        let counters = RateCounters::default();
        counters.count_refusal(RequestFamily::Floor);
        counters.count_refusal(RequestFamily::Floor);
        counters.count_refusal(RequestFamily::Other);
        counters.count_cut_off();
        let by_family: Vec<u64> = RequestFamily::ALL
            .iter()
            .map(|&f| counters.refused(f))
            .collect();
        assert_eq!(by_family, [2, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(counters.cut_off(), 1);
        let labels: std::collections::HashSet<&str> =
            RequestFamily::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(labels.len(), RequestFamily::ALL.len(), "labels are unique");
    }
}
