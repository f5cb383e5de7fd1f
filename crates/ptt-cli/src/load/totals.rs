//! What every task of a load run adds to: the shared counters and
//! histograms, and what the run produced for the report.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::stats::Latency;

/// `d` in whole µs, the unit of every histogram.
pub(super) fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Every histogram of the run.
#[derive(Debug)]
pub(crate) struct Hists {
    pub(crate) access: Latency,
    pub(crate) one_way: Latency,
    /// Capture → decoded after timed jitter-buffer playout, at the probes.
    pub(crate) mouth_to_ear: Latency,
    /// One-way + jitter-buffer playout delay, at every listener.
    pub(crate) mouth_to_ear_approx: Latency,
    pub(crate) late_entry: Latency,
}

/// Counters and histograms shared by every task.
#[derive(Debug)]
pub(crate) struct Totals {
    pub(crate) hists: Mutex<Hists>,
    pub(crate) bursts: AtomicU64,
    pub(crate) floor_failures: AtomicU64,
    pub(crate) frames_pushed: AtomicU64,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) frames_expected: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) reordered: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) late_entries: AtomicU64,
    pub(crate) late_failures: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
}

impl Totals {
    pub(super) fn new() -> Self {
        Self {
            hists: Mutex::new(Hists {
                access: Latency::new(),
                one_way: Latency::new(),
                mouth_to_ear: Latency::new(),
                mouth_to_ear_approx: Latency::new(),
                late_entry: Latency::new(),
            }),
            bursts: AtomicU64::new(0),
            floor_failures: AtomicU64::new(0),
            frames_pushed: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            frames_expected: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
            late_entries: AtomicU64::new(0),
            late_failures: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
        }
    }

    pub(crate) fn hists(&self) -> std::sync::MutexGuard<'_, Hists> {
        self.hists.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a run produced, for the report.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) totals: Arc<Totals>,
    pub(crate) listeners: usize,
    pub(crate) late_terminals: usize,
    pub(crate) groups: usize,
    pub(crate) talk_groups: usize,
    pub(crate) talkers: usize,
    /// The relay's CPU seconds during the talking phase, when known.
    pub(crate) cpu_talk_phase: Option<f64>,
    /// This process's CPU seconds during the talking phase.
    pub(crate) load_cpu: Option<f64>,
    /// The relay's resident memory with everyone logged in, KiB.
    pub(crate) relay_rss_logged_in: Option<u64>,
}
