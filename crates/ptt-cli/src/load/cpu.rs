//! The CPU a generator thread used over the talking phase, so the report
//! can say what the generator cost beside the relay.

use std::time::Instant;

use super::relay;

/// A thread's CPU over the talking phase.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ThreadCpu {
    /// CPU seconds the thread used.
    pub(super) seconds: f64,
    /// Wall-clock seconds it was measured over.
    pub(super) wall: f64,
}

impl ThreadCpu {
    /// The share of one core the thread used.
    pub(super) fn busy(self) -> f64 {
        if self.wall > 0.0 {
            self.seconds / self.wall
        } else {
            0.0
        }
    }
}

/// Measures the calling thread's CPU from its start.
pub(super) struct ThreadMeter {
    ticks: f64,
    cpu: Option<f64>,
    since: Instant,
}

impl ThreadMeter {
    /// Starts measuring the calling thread.
    pub(super) fn start() -> Self {
        let ticks = relay::clock_ticks();
        Self {
            ticks,
            cpu: relay::thread_cpu_seconds(ticks),
            since: Instant::now(),
        }
    }

    /// The calling thread's CPU since [`ThreadMeter::start`] (call it on
    /// the same thread).
    pub(super) fn finish(self) -> Option<ThreadCpu> {
        let now = relay::thread_cpu_seconds(self.ticks)?;
        Some(ThreadCpu {
            seconds: now - self.cpu?,
            wall: self.since.elapsed().as_secs_f64(),
        })
    }
}
