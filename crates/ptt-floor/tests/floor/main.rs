//! Floor control scenarios and invariants, driven through the sans-IO state machine.
//!
//! One test binary (the allocation test stays apart: it installs a counting allocator).

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../scenario/mod.rs"]
mod scenario;

mod emergency;
mod grant_and_queue;
mod invariants;
mod membership;
mod preemption;
mod timers;
