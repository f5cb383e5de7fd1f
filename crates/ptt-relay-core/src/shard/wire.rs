//! The relay's own latency to the wire, per shard: from a voice datagram's
//! arrival to the moment its shard's event loop has run the connection of
//! every listener it handed the frame to — each of which, unless its
//! congestion controller or pacer holds it back, built its packet and gave
//! it to the kernel in that run.
//!
//! The forward-latency histogram stops where the frame is handed to quinn;
//! the packets leave when the shard gets round to each listener's
//! connection. A shard is one thread whose scheduler runs woken tasks in
//! the order they were woken, so a probe task woken right after the fan-out
//! runs once every connection woken before it has run: its delay is the
//! frame's time to the wire. One frame is timed at a time per shard (a
//! frame handed while another is being timed is skipped), so the probe
//! costs one wake per timed frame, not per listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::metrics::Histogram;

/// One shard's probe.
#[derive(Debug)]
pub struct WireProbe {
    /// What `timing` counts from.
    base: Instant,
    /// The arrival of the frame being timed, in nanoseconds after `base`
    /// plus one; 0 while none is.
    timing: AtomicU64,
    /// Wakes the probe task after a fan-out.
    fanned_out: Notify,
}

impl Default for WireProbe {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            timing: AtomicU64::new(0),
            fanned_out: Notify::new(),
        }
    }
}

impl WireProbe {
    /// Times the frame that arrived at `received`, just handed to this
    /// shard's listeners, unless another frame is being timed. Call it on
    /// the shard's thread, after the fan-out.
    #[inline]
    pub fn fanned_out(&self, received: Instant) {
        let since_base = received.saturating_duration_since(self.base).as_nanos();
        let stamp = u64::try_from(since_base).unwrap_or(u64::MAX - 1) + 1;
        if self
            .timing
            .compare_exchange(0, stamp, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.fanned_out.notify_one();
        }
    }

    /// The probe task: runs on the shard's thread for as long as the shard,
    /// recording each timed frame's latency to the wire in `latency`.
    pub async fn run(&self, latency: &Histogram) {
        loop {
            self.fanned_out.notified().await;
            let stamp = self.timing.swap(0, Ordering::Relaxed);
            if stamp == 0 {
                continue;
            }
            let received = self.base + Duration::from_nanos(stamp - 1);
            latency.observe(received.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// On a current-thread runtime, the probe runs after the tasks woken
    /// before it, and times one frame at a time.
    #[tokio::test(flavor = "current_thread")]
    async fn the_probe_runs_after_the_tasks_woken_before_it() {
        let probe = Arc::new(WireProbe::default());
        let latency = Arc::new(Histogram::default());
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let wakes = Arc::new(Notify::new());
        // Three "connections" waiting to be woken by the fan-out.
        for id in 0..3 {
            let (ran, wakes) = (ran.clone(), wakes.clone());
            tokio::spawn(async move {
                wakes.notified().await;
                // A connection's packet building takes a while.
                std::thread::sleep(Duration::from_millis(2));
                ran.lock().unwrap().push(id);
            });
        }
        let probing = tokio::spawn({
            let (probe, latency) = (probe.clone(), latency.clone());
            async move { probe.run(&latency).await }
        });
        tokio::task::yield_now().await;
        let received = Instant::now();
        wakes.notify_waiters();
        probe.fanned_out(received);
        // A second frame while the first is timed is not timed.
        probe.fanned_out(Instant::now());
        while latency.snapshot().count() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            *ran.lock().unwrap(),
            vec![0, 1, 2],
            "all ran before the probe"
        );
        let snapshot = latency.snapshot();
        assert_eq!(snapshot.count(), 1);
        // Three connections of 2 ms each: at least 6 ms to the wire.
        assert!(snapshot.sum_us >= 6_000, "{}", snapshot.sum_us);
        probing.abort();
    }
}
