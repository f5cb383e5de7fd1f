//! The state both directions' tasks share: each direction's impairment,
//! blackout switch, dice and counters.

use std::sync::Mutex;
use std::time::Instant;

use super::dice::{Dice, Fate};
use super::impairment::{Direction, Impairment};
use super::stats::Counters;

/// The mutable settings of one direction.
#[derive(Debug)]
struct Settings {
    impairment: Impairment,
    blackout: bool,
    dice: Dice,
}

/// One direction: its settings and its counters.
#[derive(Debug)]
pub(crate) struct Lane {
    settings: Mutex<Settings>,
    pub(crate) counters: Counters,
}

/// Both directions of one proxy.
#[derive(Debug)]
pub(crate) struct Shared {
    lanes: [Lane; 2],
}

/// Odd constant mixed into the seed so the two directions roll differently.
const DOWNLINK_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

impl Shared {
    /// Both directions unimpaired, dice seeded from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let lane = |seed| Lane {
            settings: Mutex::new(Settings {
                impairment: Impairment::NONE,
                blackout: false,
                dice: Dice::new(seed),
            }),
            counters: Counters::default(),
        };
        Self {
            lanes: [lane(seed), lane(seed ^ DOWNLINK_SALT)],
        }
    }

    /// The lane of `direction`.
    pub(crate) fn lane(&self, direction: Direction) -> &Lane {
        &self.lanes[direction.index()]
    }

    /// Sets the impairment of `direction`.
    pub(crate) fn set(&self, direction: Direction, impairment: Impairment) {
        self.lane(direction).settings().impairment = impairment;
    }

    /// Turns the blackout of `direction` on or off.
    pub(crate) fn set_blackout(&self, direction: Direction, on: bool) {
        self.lane(direction).settings().blackout = on;
    }

    /// Whether `direction` is blacked out now.
    pub(crate) fn blacked_out(&self, direction: Direction) -> bool {
        self.lane(direction).settings().blackout
    }

    /// Decides the fate of a packet that reached the proxy at `now` going
    /// `direction`, counts it, and returns when to send each copy (none if
    /// it is dropped).
    pub(crate) fn admit(&self, direction: Direction, now: Instant) -> Vec<Instant> {
        let lane = self.lane(direction);
        Counters::bump(&lane.counters.received);
        let mut settings = lane.settings();
        if settings.blackout {
            Counters::bump(&lane.counters.blacked_out);
            return Vec::new();
        }
        let impairment = settings.impairment;
        match settings.dice.roll(&impairment) {
            Fate::Lost => {
                Counters::bump(&lane.counters.lost);
                Vec::new()
            }
            Fate::Deliver(delays) => {
                for _ in 1..delays.len() {
                    Counters::bump(&lane.counters.duplicated);
                }
                delays.into_iter().map(|d| now + d).collect()
            }
        }
    }
}

impl Lane {
    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }
}
