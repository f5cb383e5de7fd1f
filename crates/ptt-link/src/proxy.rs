//! The [`LossyProxy`] handle: start it, turn its knobs, read its counters;
//! dropping it stops every task.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::flows::{Forwarder, serve_terminals};
use super::impairment::{Direction, Impairment};
use super::scheduler::{self, MAX_WAITING};
use super::shared::Shared;
use super::stats::ProxyStats;

/// The environment variable that overrides a test's seed, to replay a run.
pub(crate) const SEED_VAR: &str = "PTT_LOSSY_SEED";

/// The seed to use: `PTT_LOSSY_SEED` if set and a number, else `default`.
/// Tests print the seed they use so a failure can be replayed.
pub fn seed_or(default: u64) -> u64 {
    std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// A running lossy proxy in front of one relay. Terminals connect to
/// [`LossyProxy::addr`] instead of the relay. Starts unimpaired.
pub struct LossyProxy {
    addr: SocketAddr,
    seed: u64,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

impl LossyProxy {
    /// Binds a loopback UDP socket and forwards what arrives on it to
    /// `relay`, with dice seeded from `seed`.
    pub async fn start(relay: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let listen = Arc::new(UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?);
        let addr = listen.local_addr()?;
        let shared = Arc::new(Shared::new(seed));
        let cancel = CancellationToken::new();
        let (queue, incoming) = mpsc::channel(MAX_WAITING);
        tokio::spawn(scheduler::run(incoming, shared.clone(), cancel.clone()));
        let forwarder = Forwarder {
            shared: shared.clone(),
            queue,
            cancel: cancel.clone(),
        };
        tokio::spawn(serve_terminals(listen, relay, forwarder));
        Ok(Self {
            addr,
            seed,
            shared,
            _stop: cancel.drop_guard(),
        })
    }

    /// The address terminals send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The seed of the dice.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Sets the impairment of one direction, from the next packet on.
    pub fn set(&self, direction: Direction, impairment: Impairment) {
        self.shared.set(direction, impairment);
    }

    /// Sets the same impairment both ways.
    pub fn set_both(&self, impairment: Impairment) {
        for direction in Direction::BOTH {
            self.set(direction, impairment);
        }
    }

    /// Starts (`true`) or ends a blackout of both directions: while on,
    /// every packet is dropped, including those already waiting for their
    /// delay.
    pub fn blackout(&self, on: bool) {
        for direction in Direction::BOTH {
            self.blackout_one(direction, on);
        }
    }

    /// Starts or ends a blackout of one direction.
    pub fn blackout_one(&self, direction: Direction, on: bool) {
        self.shared.set_blackout(direction, on);
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            to_relay: self.shared.lane(Direction::ToRelay).counters.snapshot(),
            to_client: self.shared.lane(Direction::ToClient).counters.snapshot(),
        }
    }
}
