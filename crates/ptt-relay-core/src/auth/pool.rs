//! The bounded pool that checks secrets: at most a few argon2 verifications
//! run at once, within a memory budget, and a short queue waits for them. A
//! login that finds the queue full — as many waiting as allowed, or more
//! work ahead of it than the pool gets through in the longest wait allowed,
//! judged from recent verifications — fails at once instead of piling up, so
//! a burst of logins (or of guesses) costs bounded memory and time and leaves
//! the relay responsive. Light hashes thus queue by the thousand, production
//! ones by the hundred.
//!
//! The verifications run on the pool's own threads, one per worker, started
//! with it: the same few threads hash every time, so the C allocator keeps
//! at most one freed hash block per worker (tokio's blocking pool would start
//! new threads, each keeping its own). They run at a lower priority than the
//! voice path (`SCHED_BATCH`, nice 10): on a machine whose cores they fill —
//! a burst of wrong secrets on two workers and two cores — a shard that has
//! frames to forward still runs at once, instead of a time slice later.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::metrics::Metrics;

/// How big the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Verifications running at once (at least 1).
    pub workers: usize,
    /// Memory all running verifications may use together, in KiB; each
    /// takes its hash's own memory cost (`m=` of its PHC string).
    pub memory_kib: u32,
    /// Logins that may wait for a worker; more are refused at once.
    pub queue: usize,
    /// Longest a login may expect to wait: one that would find more work
    /// ahead of it is refused at once.
    pub max_wait: Duration,
}

/// Why a verification did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The queue was full: the relay is busy verifying other logins.
    #[error("too many logins waiting to be verified")]
    Busy,
    /// The verification panicked or the pool was shut.
    #[error("the verification did not complete")]
    Failed,
}

/// Work for a pool thread.
type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool of blocking verifications.
#[derive(Debug)]
pub struct HashPool {
    size: PoolSize,
    /// Feeds the pool's threads; they end when the pool is dropped.
    jobs: mpsc::Sender<Job>,
    workers: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// Recent verifications' duration (a moving average), µs; 0 until the
    /// first one ends.
    average_us: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

/// The places a running verification holds until it returns.
struct Admission {
    _worker: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place in the queue, given back however the wait ends.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// A pool of `size`, its threads started; admissions and refusals are
    /// counted in `metrics` (`auth_verifications`, `auth_busy`).
    pub fn new(size: PoolSize, metrics: Arc<Metrics>) -> Self {
        let size = PoolSize {
            workers: size.workers.max(1),
            memory_kib: size.memory_kib.max(1),
            queue: size.queue,
            max_wait: size.max_wait,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..size.workers {
            let queue = queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("pttd-hash-{n}"))
                .spawn(move || work(&queue));
            if let Err(error) = started {
                // Fewer threads than workers only slows verifications down.
                tracing::error!(%error, "cannot start a hashing thread");
            }
        }
        Self {
            size,
            jobs,
            workers: Arc::new(Semaphore::new(size.workers)),
            memory: Arc::new(Semaphore::new(size.memory_kib as usize)),
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            average_us: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    /// The pool's size.
    pub fn size(&self) -> PoolSize {
        self.size
    }

    /// Runs `job`, a verification costing `cost_kib` of memory, on a pool
    /// thread once a worker and the memory are free; waits in the queue if
    /// it has room, fails with [`PoolError::Busy`] at once if not. A cost
    /// above the whole budget is taken as the whole budget.
    ///
    /// The job keeps its places until it returns, even if the caller stops
    /// waiting: memory that is in use stays counted.
    pub async fn run<T, F>(&self, cost_kib: u32, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let cost = cost_kib.clamp(1, self.size.memory_kib);
        let admission = match self.try_admit(cost) {
            Some(admission) => admission,
            None => self.wait_in_queue(cost).await?,
        };
        self.metrics.auth_verifications.inc();
        let (done, result) = oneshot::channel();
        let average_us = self.average_us.clone();
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let out = std::panic::catch_unwind(AssertUnwindSafe(job));
            note_duration(&average_us, started.elapsed());
            drop(admission);
            if let Ok(out) = out {
                let _ = done.send(out);
            }
        });
        if self.jobs.send(job).is_err() {
            return Err(PoolError::Failed);
        }
        result.await.map_err(|_| PoolError::Failed)
    }

    /// Verifications running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Most verifications that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Logins waiting for a worker now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    fn try_admit(&self, cost: u32) -> Option<Admission> {
        let worker = self.workers.clone().try_acquire_owned().ok()?;
        let memory = self.memory.clone().try_acquire_many_owned(cost).ok()?;
        Some(self.admitted(worker, memory))
    }

    async fn wait_in_queue(&self, cost: u32) -> Result<Admission, PoolError> {
        let Some(_queued) = self.enqueue() else {
            self.metrics.auth_busy.inc();
            return Err(PoolError::Busy);
        };
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Failed)?;
        let memory = self
            .memory
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| PoolError::Failed)?;
        Ok(self.admitted(worker, memory))
    }

    /// A place in the queue, if there is room: fewer waiting than allowed,
    /// and the work ahead (those waiting and this one, shared by the
    /// workers) done within the longest wait.
    fn enqueue(&self) -> Option<Queued<'_>> {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let queued = Queued(&self.waiting);
        let average = Duration::from_micros(self.average_us.load(Ordering::Relaxed));
        let ahead = u32::try_from(before + 1).unwrap_or(u32::MAX);
        let workers = u32::try_from(self.size.workers).unwrap_or(u32::MAX);
        let expected = average.saturating_mul(ahead) / workers;
        (before < self.size.queue && expected <= self.size.max_wait).then_some(queued)
    }

    fn admitted(&self, worker: OwnedSemaphorePermit, memory: OwnedSemaphorePermit) -> Admission {
        let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        Admission {
            _worker: worker,
            _memory: memory,
            running: self.running.clone(),
        }
    }
}

/// Folds one verification's duration into the moving average (an eighth of
/// the new sample each time; the first sample as it is).
fn note_duration(average_us: &AtomicU64, took: Duration) {
    let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
    let _ = average_us.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        })
    });
}

/// The niceness of the hashing threads: CFS then gives a voice thread
/// about ten times their share of a core they compete for, and hashing
/// still progresses under load.
pub(crate) const HASH_NICE: i32 = 10;

/// `thread-priority`'s 0–99 scale for normal policies, mapped onto nice
/// 19…−20 (`nice = ⌊39 · (1 − p/99)⌋ − 20`): 22 is nice 10.
const HASH_PRIORITY: u8 = 22;
const _: () = assert!(39 * (99 - HASH_PRIORITY as i32) / 99 - 20 == HASH_NICE);

/// Puts the calling thread under `SCHED_BATCH` at [`HASH_NICE`]: a CPU-bound
/// batch job that voice threads preempt. Lowering one's own priority needs
/// no privilege; should it fail anyway, the thread hashes at normal
/// priority (logged).
fn yield_to_voice() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let lowered = ThreadPriorityValue::try_from(HASH_PRIORITY)
        .map_err(|_| thread_priority::Error::Priority("out of range"))
        .and_then(|value| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
            )
        });
    if let Err(error) = lowered {
        tracing::warn!(?error, "hashing thread keeps normal priority");
    }
}

/// A pool thread: runs jobs until the pool is gone.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    yield_to_voice();
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// (nice, scheduling policy) of this process's threads named `pttd-hash-*`,
    /// from `/proc/self/task/*/stat` (fields 19 and 41).
    fn hashing_threads() -> Vec<(i32, u32)> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            if !head.contains("(pttd-hash-") {
                continue;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            found.push((fields[16].parse().unwrap(), fields[38].parse().unwrap()));
        }
        found
    }

    #[test]
    fn hashing_threads_run_below_the_voice_path() {
        const SCHED_BATCH: u32 = 3;
        let _pool = pool(2, 1024, 4);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let threads = hashing_threads();
            let lowered = threads.iter().filter(|t| **t == (HASH_NICE, SCHED_BATCH));
            if threads.len() >= 2 && lowered.count() == threads.len() {
                break;
            }
            assert!(Instant::now() < deadline, "hashing threads: {threads:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pool(workers: usize, memory_kib: u32, queue: usize) -> Arc<HashPool> {
        Arc::new(HashPool::new(
            PoolSize {
                workers,
                memory_kib,
                queue,
                max_wait: Duration::from_secs(60),
            },
            Arc::new(Metrics::default()),
        ))
    }

    fn slow_job() -> impl FnOnce() -> u32 + Send + 'static {
        || {
            std::thread::sleep(Duration::from_millis(30));
            7
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_runs_more_than_its_workers_and_refuses_beyond_the_queue() {
        let pool = pool(2, 1 << 20, 3);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let pool = pool.clone();
            set.spawn(async move { pool.run(1024, slow_job()).await });
        }
        let (mut ran, mut busy) = (0, 0);
        while let Some(result) = set.join_next().await {
            match result.unwrap() {
                Ok(7) => ran += 1,
                Err(PoolError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(pool.peak(), 2, "two workers");
        assert_eq!(ran, 5, "two running and three queued");
        assert_eq!(busy, 5, "the rest refused at once");
        assert_eq!(pool.metrics.auth_verifications.get(), 5);
        assert_eq!(pool.metrics.auth_busy.get(), 5);
        assert_eq!((pool.running(), pool.waiting()), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_memory_budget_limits_heavy_hashes_below_the_worker_count() {
        // Four workers but memory for two 19 MiB hashes.
        let pool = pool(4, 2 * 19_456, 100);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let pool = pool.clone();
            set.spawn(async move { pool.run(19_456, slow_job()).await });
        }
        while let Some(result) = set.join_next().await {
            assert_eq!(result.unwrap(), Ok(7));
        }
        assert_eq!(pool.peak(), 2);
        // Light hashes use the other workers.
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let pool = pool.clone();
            set.spawn(async move { pool.run(1024, slow_job()).await });
        }
        while set.join_next().await.is_some() {}
        assert_eq!(pool.peak(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_that_would_wait_too_long_is_refused_at_once() {
        let pool = Arc::new(HashPool::new(
            PoolSize {
                workers: 1,
                memory_kib: 1024,
                queue: 100,
                max_wait: Duration::from_millis(100),
            },
            Arc::new(Metrics::default()),
        ));
        // Teaches the pool that a verification takes about 60 ms.
        assert_eq!(
            pool.run(1, || std::thread::sleep(Duration::from_millis(60)))
                .await,
            Ok(())
        );
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let pool = pool.clone();
            set.spawn(async move { pool.run(1, slow_job()).await });
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut busy = 0;
        while let Some(result) = set.join_next().await {
            busy += usize::from(result.unwrap() == Err(PoolError::Busy));
        }
        // One runs; one waits (60 ms ahead); a third would wait 120 ms.
        assert_eq!(busy, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_stops_waiting_leaves_the_job_its_places() {
        let pool = pool(1, 1024, 0);
        let started = pool.clone();
        let running = tokio::spawn(async move {
            started
                .run(1024, || std::thread::sleep(Duration::from_millis(200)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        running.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.running(), 1, "the hash still runs");
        assert_eq!(pool.run(1, || ()).await, Err(PoolError::Busy));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(pool.running(), 0);
        assert_eq!(pool.run(1, || 1).await, Ok(1));
    }
}
