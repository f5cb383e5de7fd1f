//! A link emulator: a lossy UDP proxy between terminals and the relay on
//! loopback, with loss, delay, jitter (which also reorders), duplication and
//! blackouts per direction, changeable while it runs, from a seeded random
//! generator. The end-to-end tests put it in front of a relay to make a
//! bad network; `ptt load --link` and the fan-out bench's field rows use it
//! where the kernel has no `netem` to make a field-like one.
//!
//! ```text
//! terminal ──▶ proxy.addr() ──[ToRelay impairment]──▶ relay
//! terminal ◀── proxy.addr() ◀──[ToClient impairment]── relay
//! ```
//!
//! Each client source address gets its own upstream socket, so several
//! QUIC clients can share one proxy and the relay sees each as a distinct
//! peer. The proxy stops when its [`LossyProxy`] handle is dropped.
//!
//! **Determinism.** Every packet's fate (lost, delayed by how much,
//! duplicated) is drawn from a `StdRng` seeded per direction from one seed,
//! in the order the packets reach the proxy. With one client and one
//! direction the fates are exactly reproducible; what is *not* reproducible
//! is timing — which packets QUIC sends, and how the packets of two
//! directions or two clients interleave, depend on the scheduler. A failing
//! run is replayed with the same seed ([`seed_or`] reads `PTT_LOSSY_SEED`),
//! which reproduces the impairment, not the exact interleaving.

mod dice;
mod flows;
mod impairment;
mod proxy;
mod scheduler;
mod shared;
mod stats;

pub use impairment::{Direction, Impairment};
pub use proxy::{LossyProxy, seed_or};
pub use stats::{DirectionStats, ProxyStats};

#[cfg(test)]
mod tests;
