//! What every task of a load run adds to: the shared counters and
//! histograms, and what the run produced for the report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cpu::ThreadCpu;
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
    /// One-way of the frames stamped by the kernel at the listener's socket.
    pub(crate) one_way_socket: Latency,
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
    /// Log-ins tried again after failing for now (timed out, refused).
    pub(crate) login_retries: AtomicU64,
    /// Packets the kernel dropped at the listeners' sockets (full buffer).
    pub(crate) listener_socket_drops: AtomicU64,
    /// ACK frames the listeners sent, from their connections' QUIC stats.
    pub(crate) listener_acks: AtomicU64,
    /// DATAGRAM frames the listeners received, likewise.
    pub(crate) listener_datagrams: AtomicU64,
}

impl Totals {
    pub(super) fn new() -> Self {
        Self {
            hists: Mutex::new(Hists {
                access: Latency::new(),
                one_way: Latency::new(),
                one_way_socket: Latency::new(),
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
            login_retries: AtomicU64::new(0),
            listener_socket_drops: AtomicU64::new(0),
            listener_acks: AtomicU64::new(0),
            listener_datagrams: AtomicU64::new(0),
        }
    }

    pub(crate) fn hists(&self) -> std::sync::MutexGuard<'_, Hists> {
        self.hists.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sum of `parts`: each generator thread counts in its own, so no
    /// counter or histogram is shared between threads while measuring.
    pub(crate) fn merged(parts: &[Arc<Totals>]) -> Totals {
        let sum = Totals::new();
        for part in parts {
            let counters = [
                (&sum.bursts, &part.bursts),
                (&sum.floor_failures, &part.floor_failures),
                (&sum.frames_pushed, &part.frames_pushed),
                (&sum.frames_sent, &part.frames_sent),
                (&sum.frames_expected, &part.frames_expected),
                (&sum.frames_received, &part.frames_received),
                (&sum.duplicates, &part.duplicates),
                (&sum.reordered, &part.reordered),
                (&sum.lagged, &part.lagged),
                (&sum.late_entries, &part.late_entries),
                (&sum.late_failures, &part.late_failures),
                (&sum.decode_errors, &part.decode_errors),
                (&sum.login_retries, &part.login_retries),
                (&sum.listener_socket_drops, &part.listener_socket_drops),
                (&sum.listener_acks, &part.listener_acks),
                (&sum.listener_datagrams, &part.listener_datagrams),
            ];
            for (total, add) in counters {
                total.fetch_add(add.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            let mut into = sum.hists();
            let from = part.hists();
            into.access.add(&from.access);
            into.one_way.add(&from.one_way);
            into.one_way_socket.add(&from.one_way_socket);
            into.mouth_to_ear.add(&from.mouth_to_ear);
            into.mouth_to_ear_approx.add(&from.mouth_to_ear_approx);
            into.late_entry.add(&from.late_entry);
        }
        sum
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
    /// The talker thread's CPU over the talking phase.
    pub(crate) talker_cpu: Option<ThreadCpu>,
    /// Each receive lane's CPU over the talking phase.
    pub(crate) lane_cpu: Option<Vec<ThreadCpu>>,
}
