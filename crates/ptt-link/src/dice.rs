//! The seeded dice of one direction: the fate of each packet.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::impairment::Impairment;

/// What happens to one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Dropped by the loss probability.
    Lost,
    /// Sent once per entry, each after its delay (two entries: duplicated).
    Deliver(Vec<Duration>),
}

/// A seeded generator drawing packet fates.
#[derive(Debug)]
pub(crate) struct Dice {
    rng: StdRng,
}

impl Dice {
    /// Dice seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The fate of the next packet under `impairment`. Always draws the same
    /// four numbers per packet, so the loss pattern of a seed does not
    /// change when a test turns another knob.
    pub(crate) fn roll(&mut self, impairment: &Impairment) -> Fate {
        let lose: f64 = self.rng.random();
        let twice: f64 = self.rng.random();
        let spread = [self.rng.random::<f64>(), self.rng.random::<f64>()];
        if lose < impairment.loss {
            return Fate::Lost;
        }
        let copies = if twice < impairment.duplicate { 2 } else { 1 };
        Fate::Deliver(
            spread[..copies]
                .iter()
                .map(|&u| impairment.delay + impairment.jitter.mul_f64(u))
                .collect(),
        )
    }
}
