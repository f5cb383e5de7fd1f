//! Counters of admission before authentication ([`crate::admission`]): why
//! connections were turned away, how many address-validation retries were
//! sent, and how many connections are unauthenticated or waiting now.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was turned away before (or at) authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdmissionRefusal {
    /// Every unauthenticated slot was taken (`max-unauthenticated`) and the
    /// connection could not wait for one.
    UnauthenticatedTotal,
    /// Its source address held all its unauthenticated slots
    /// (`max-unauthenticated-per-address`) and it could not wait for one.
    PerAddress,
    /// It authenticated, but `max-connections` sessions were open.
    MaxConnections,
    /// It did not finish the QUIC handshake and say `Hello` within
    /// `hello-timeout`.
    HelloTimeout,
}

impl AdmissionRefusal {
    /// All reasons, in the order of [`AdmissionRefusal::index`].
    pub const ALL: [AdmissionRefusal; 4] = [
        AdmissionRefusal::UnauthenticatedTotal,
        AdmissionRefusal::PerAddress,
        AdmissionRefusal::MaxConnections,
        AdmissionRefusal::HelloTimeout,
    ];

    /// Stable label for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            AdmissionRefusal::UnauthenticatedTotal => "unauthenticated_total",
            AdmissionRefusal::PerAddress => "per_address",
            AdmissionRefusal::MaxConnections => "max_connections",
            AdmissionRefusal::HelloTimeout => "hello_timeout",
        }
    }

    /// Position in [`AdmissionRefusal::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for AdmissionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that goes up and down (a count of things held now).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one away (never below zero).
    #[inline]
    pub fn dec(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The admission counters of the relay.
///
/// Exposed on `/metrics` as `pttd_admission_refused_total{reason}`,
/// `pttd_admission_retries_total`, `pttd_unauthenticated_connections` and
/// `pttd_admission_waiting`.
///
/// Plain relaxed atomics, like the other counters (not `Counter`:
/// this file is a leaf of `metrics`, which holds it).
#[derive(Debug, Default)]
pub struct AdmissionCounters {
    refused: [AtomicU64; AdmissionRefusal::ALL.len()],
    retries: AtomicU64,
    /// Connections holding an unauthenticated slot now (QUIC handshake,
    /// waiting for `Hello`, or being authenticated).
    pub unauthenticated: Gauge,
    /// Connection attempts waiting for an unauthenticated slot now.
    pub waiting: Gauge,
}

impl AdmissionCounters {
    /// Counts one connection turned away for `reason`.
    pub fn count_refused(&self, reason: AdmissionRefusal) {
        self.refused[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections turned away for `reason` since start.
    pub fn refused(&self, reason: AdmissionRefusal) -> u64 {
        self.refused[reason.index()].load(Ordering::Relaxed)
    }

    /// Counts one QUIC Retry sent to make a client prove its address.
    pub fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// QUIC Retry packets sent since start.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}
