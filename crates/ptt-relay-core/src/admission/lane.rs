//! The handshake lane: the relay accepts (or refuses) one connection
//! attempt at a time.
//!
//! Accepting an attempt runs the relay's half of the TLS handshake (key
//! exchange and certificate signature, 0.2–0.8 ms) inside quinn's endpoint,
//! under the lock that every received datagram also takes on its way to its
//! connection. A burst of attempts — a flood, a fleet reconnecting after a
//! restart, the waiting room's deadline running out for hundreds at once —
//! accepted from as many concurrent tasks kept every worker busy with
//! handshakes and held the voice of calls already running behind them: a
//! 500-connection flood delayed bystanders' frames by 4–20 ms. Through the
//! lane, handshakes take one worker at most, and the lane's holder yields
//! before it lets the next attempt in, so datagrams waiting for the endpoint
//! and tasks waiting for the worker go between two handshakes.

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// One attempt at a time through the endpoint's accept and refuse.
#[derive(Debug)]
pub(super) struct HandshakeLane(Semaphore);

impl HandshakeLane {
    pub(super) fn new() -> Self {
        Self(Semaphore::new(1))
    }

    /// Runs `step` (accepting or refusing an attempt) once the lane is
    /// free, in arrival order; `None` if `deadline` came first.
    pub(super) async fn run<T>(&self, deadline: Instant, step: impl FnOnce() -> T) -> Option<T> {
        if Instant::now() >= deadline {
            return None;
        }
        let permit = tokio::time::timeout_at(deadline, self.0.acquire())
            .await
            .ok()?
            .expect("the lane's semaphore is never closed");
        let done = step();
        // Still holding the lane: whatever became ready meanwhile (voice
        // tasks on this worker, the endpoint driver) runs before the next
        // handshake starts.
        tokio::task::yield_now().await;
        drop(permit);
        Some(done)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn steps_never_overlap_and_all_run() {
        let lane = Arc::new(HandshakeLane::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let far = Instant::now() + Duration::from_secs(10);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (lane, inside, most) = (lane.clone(), inside.clone(), most.clone());
            tasks.spawn(async move {
                lane.run(far, || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(200));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            });
        }
        let mut ran = 0;
        while let Some(done) = tasks.join_next().await {
            ran += usize::from(done.unwrap().is_some());
        }
        assert_eq!(ran, 64);
        assert_eq!(most.load(Ordering::SeqCst), 1, "two steps ran at once");
    }

    #[tokio::test]
    async fn a_step_that_cannot_start_by_its_deadline_does_not_run() {
        let lane = HandshakeLane::new();
        let held = lane.0.acquire().await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(lane.run(deadline, || "ran").await, None);
        drop(held);
        assert_eq!(
            lane.run(deadline, || "ran").await,
            None,
            "past its deadline"
        );
        let later = Instant::now() + Duration::from_millis(50);
        assert_eq!(lane.run(later, || "ran").await, Some("ran"));
    }
}
