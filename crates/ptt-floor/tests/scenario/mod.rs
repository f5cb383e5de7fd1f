//! How a scenario starts: a floor with the default policy, or a floor under
//! a given policy with talkers 1..=n already joined.

#![allow(dead_code)] // each test binary uses a different subset

use ptt_floor::FloorPolicy;

use crate::harness::{Sim, TALKER};

/// A sim under the default policy, nobody joined.
pub(crate) fn sim() -> Sim {
    Sim::new(FloorPolicy::default())
}

/// A sim with talkers 1..=n joined.
pub(crate) fn sim_with_talkers(policy: FloorPolicy, n: u32) -> Sim {
    let mut s = Sim::new(policy);
    for id in 1..=n {
        s.join(id, TALKER);
    }
    s
}
