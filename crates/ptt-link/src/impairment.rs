//! What the proxy does to one direction's packets: the knobs a test turns.

use std::time::Duration;

/// One direction of the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the terminal to the relay (uplink).
    ToRelay,
    /// From the relay to the terminal (downlink).
    ToClient,
}

impl Direction {
    /// Both directions, uplink first.
    pub const BOTH: [Direction; 2] = [Direction::ToRelay, Direction::ToClient];

    /// Index into per-direction arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::ToRelay => 0,
            Direction::ToClient => 1,
        }
    }
}

/// How one direction's packets are impaired. Every packet is independently
/// lost with probability `loss`; a packet that survives is sent after
/// `delay` plus a uniform random `0..=jitter` (so packets overtake each
/// other when `jitter` exceeds their spacing), and with probability
/// `duplicate` a second copy follows with its own jitter.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Probability that a packet is dropped, 0.0..=1.0.
    pub loss: f64,
    /// Fixed delay of every packet.
    pub delay: Duration,
    /// Largest extra random delay (uniform), which also reorders.
    pub jitter: Duration,
    /// Probability that a packet is sent twice, 0.0..=1.0.
    pub duplicate: f64,
}

impl Impairment {
    /// A perfect link: every packet forwarded at once, once.
    pub const NONE: Impairment = Impairment {
        loss: 0.0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        duplicate: 0.0,
    };

    /// Independent loss with probability `loss`, nothing else.
    pub fn loss(loss: f64) -> Self {
        Self { loss, ..Self::NONE }
    }

    /// This impairment with a fixed delay.
    pub fn with_delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    /// This impairment with uniform jitter of up to `jitter`.
    pub fn with_jitter(self, jitter: Duration) -> Self {
        Self { jitter, ..self }
    }

    /// This impairment with duplication probability `duplicate`.
    pub fn with_duplicate(self, duplicate: f64) -> Self {
        Self { duplicate, ..self }
    }
}
