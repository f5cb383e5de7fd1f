//! The login checks in one place, as the relay's settings size them: the
//! per-(address, terminal) limiter, the bounded hashing pool and the
//! resumption credentials, built once and shared by every handshake.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ptt_directory::{Directory, HashParams, TerminalId};

use super::limiter::AuthLimiter;
use super::pool::{HashPool, PoolError, PoolSize};
use super::resume::{ResumeKey, Resumption};
use crate::metrics::Metrics;

/// How logins are limited and resumed; the relay's configuration fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSettings {
    /// Failed logins per (source address, terminal) per minute before the
    /// pair is refused unchecked; 0: no limit.
    pub failures_per_minute: u32,
    /// Failed logins per minute across the relay before every failed login
    /// is answered only after [`LoginSettings::failure_delay`]; 0: never.
    pub global_failures_per_minute: u32,
    /// How late a failed login is answered once the global budget is spent.
    pub failure_delay: Duration,
    /// Secret verifications running at once; 0: one per core.
    pub hash_workers: usize,
    /// Memory all running verifications may use, in KiB; 0: the workers
    /// times the largest memory cost (`m=`) among the directory's hashes.
    pub hash_memory_kib: u32,
    /// Logins that may wait for a verification; more are refused at once.
    pub hash_queue: usize,
    /// Longest a login may expect to wait for its verification (judged from
    /// recent ones); one that would wait longer is refused at once.
    pub hash_max_wait: Duration,
    /// How long a resumption credential is valid; zero turns resumption off.
    pub resume_lifetime: Duration,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            failures_per_minute: 10,
            global_failures_per_minute: 300,
            failure_delay: Duration::from_secs(2),
            hash_workers: 0,
            hash_memory_kib: 0,
            hash_queue: 1024,
            hash_max_wait: Duration::from_secs(2),
            resume_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}

/// The limiter, the hashing pool and the resumption credentials.
#[derive(Debug)]
pub struct Authenticator {
    /// Failed logins per (address, terminal) and across the relay.
    pub limiter: AuthLimiter,
    /// Where secrets are verified, a bounded number at a time.
    pub pool: HashPool,
    /// Issues and checks resumption credentials.
    pub resumption: Resumption,
    failure_delay: Duration,
    /// Memory cost of checking an unknown terminal (its dummy hash has the
    /// first terminal's parameters).
    unknown_cost_kib: u32,
}

impl Authenticator {
    /// Sizes the pool for `directory`'s hashes and signs credentials with
    /// `key`; the pool counts into `metrics`.
    pub fn new(
        settings: &LoginSettings,
        key: ResumeKey,
        directory: &Directory,
        metrics: Arc<Metrics>,
    ) -> Self {
        // By default every core but one: a storm of logins hashes at full
        // speed on the others while the voice path keeps a core of its own
        // (two hashing threads on a two-core machine delayed bystanders'
        // frames by 5 ms).
        let workers = match settings.hash_workers {
            0 => {
                std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
            }
            n => n,
        };
        let largest = directory
            .terminals()
            .iter()
            .filter_map(|t| HashParams::of_hash(&t.secret_hash))
            .map(|p| p.m_kib)
            .max()
            .unwrap_or(HashParams::DEFAULT.m_kib);
        let memory_kib = match settings.hash_memory_kib {
            0 => largest.saturating_mul(u32::try_from(workers).unwrap_or(u32::MAX)),
            n => n,
        };
        let unknown_cost_kib = directory
            .terminals()
            .first()
            .and_then(|t| HashParams::of_hash(&t.secret_hash))
            .map_or(HashParams::DEFAULT.m_kib, |p| p.m_kib);
        Self {
            limiter: AuthLimiter::new(
                settings.failures_per_minute,
                settings.global_failures_per_minute,
            ),
            pool: HashPool::new(
                PoolSize {
                    workers,
                    memory_kib,
                    queue: settings.hash_queue,
                    max_wait: settings.hash_max_wait,
                },
                metrics,
            ),
            resumption: Resumption::new(key, settings.resume_lifetime),
            failure_delay: settings.failure_delay,
            unknown_cost_kib,
        }
    }

    /// Checks `terminal`'s secret in the pool (argon2 with the stored hash's
    /// own parameters); [`PoolError::Busy`] when too many logins wait.
    pub async fn verify_secret(
        &self,
        directory: &Arc<Directory>,
        terminal: u32,
        secret: Bytes,
    ) -> Result<bool, PoolError> {
        let cost = directory
            .terminal(TerminalId(terminal))
            .and_then(|t| HashParams::of_hash(&t.secret_hash))
            .map_or(self.unknown_cost_kib, |p| p.m_kib);
        let directory = directory.clone();
        self.pool
            .run(cost, move || {
                directory.verify_secret(TerminalId(terminal), &secret)
            })
            .await
    }

    /// How late a failed login is answered while failures across the relay
    /// exceed their budget.
    pub fn failure_delay(&self) -> Duration {
        self.failure_delay
    }
}
