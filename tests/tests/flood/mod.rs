//! The attack: QUIC connections that finish the handshake and then say
//! nothing (no control stream, no `Hello`), from chosen loopback addresses,
//! and what the relay and the process hold meanwhile.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ptt_relay_core::metrics::Metrics;
use tokio::task::JoinSet;

/// Longest a flood attempt is followed before the test gives up on it.
const ATTEMPT_PATIENCE: Duration = Duration::from_secs(30);

/// A client endpoint (trusting the test relay) sending from `ip`: every
/// address in 127.0.0.0/8 reaches the relay on 127.0.0.1.
pub(crate) fn endpoint_at(cert: &Path, ip: Ipv4Addr) -> anyhow::Result<quinn::Endpoint> {
    let endpoint = ptt_tests::client::endpoint(cert)?;
    endpoint.rebind(UdpSocket::bind(SocketAddr::from((ip, 0)))?)?;
    Ok(endpoint)
}

/// What became of one handshake-only attempt.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The handshake finished; the relay closed the silent connection
    /// `held` later, for `reason`.
    Held {
        held: Duration,
        reason: quinn::ConnectionError,
    },
    /// The relay never finished the handshake (refused it, or let it time
    /// out while waiting).
    NotServed,
}

/// Starts `n` handshake-only attempts from `endpoint` to the relay at
/// `relay`; each task ends when the relay closes or refuses it.
pub(crate) fn start(
    set: &mut JoinSet<Outcome>,
    endpoint: &quinn::Endpoint,
    relay: SocketAddr,
    n: usize,
) {
    for _ in 0..n {
        let connecting = endpoint.connect(relay, "localhost");
        set.spawn(async move {
            let attempt = async {
                let Ok(conn) = connecting.ok()?.await else {
                    return Some(Outcome::NotServed);
                };
                let established = Instant::now();
                let reason = conn.closed().await;
                Some(Outcome::Held {
                    held: established.elapsed(),
                    reason,
                })
            };
            tokio::time::timeout(ATTEMPT_PATIENCE, attempt)
                .await
                .ok()
                .flatten()
                .unwrap_or(Outcome::NotServed)
        });
    }
}

/// Every outcome of `set`.
pub(crate) async fn outcomes(mut set: JoinSet<Outcome>) -> anyhow::Result<Vec<Outcome>> {
    let mut all = Vec::with_capacity(set.len());
    while let Some(outcome) = set.join_next().await {
        all.push(outcome?);
    }
    Ok(all)
}

/// The held durations among `outcomes`.
pub(crate) fn held(outcomes: &[Outcome]) -> Vec<Duration> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Held { held, .. } => Some(*held),
            Outcome::NotServed => None,
        })
        .collect()
}

/// The process's resident memory in KiB.
pub(crate) fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The highest unauthenticated-connection gauge and resident memory seen
/// while it runs, sampled every few milliseconds.
pub(crate) struct Peaks {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl Peaks {
    /// Starts sampling `metrics`.
    pub(crate) fn watch(metrics: Arc<Metrics>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let (mut unauthenticated, mut rss) = (0, 0);
                let mut tick = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    unauthenticated = unauthenticated.max(metrics.admission.unauthenticated.get());
                    if tick.is_multiple_of(25) {
                        rss = rss.max(rss_kib());
                    }
                    tick += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                (unauthenticated, rss.max(rss_kib()))
            }
        });
        Self { stop, task }
    }

    /// Stops sampling: the peak gauge and the peak resident memory in KiB.
    pub(crate) async fn stop(self) -> anyhow::Result<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        Ok(self.task.await?)
    }
}

/// Waits until `check` holds, up to `patience`; whether it did.
pub(crate) async fn eventually(patience: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}
