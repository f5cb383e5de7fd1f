//! One talkgroup: the state the voice hot path reads without locks, and the
//! task that owns the group's floor.
//!
//! The hot path needs two facts per datagram: who may talk now (the floor
//! gate, one atomic word) and who listens (a copy-on-write list of links).
//! Everything else — the floor state machine, its timers, membership — is
//! owned by a single task per group and changed only there, so it needs no
//! lock at all. Sessions talk to that task through a bounded command queue.

mod command;
pub mod context;
mod events;
mod member;
pub mod registry;
mod seat;
mod seat_follower;
mod seat_owner;
mod seat_state;
mod shared;
mod task;

pub use command::{Answer, ClusterCommand, Command, MAX_EMERGENCY_TEXT};
pub use context::{EmergencyWatch, GroupCluster, GroupContext, RemoteVoice};
pub use registry::Groups;
pub use shared::{COMMAND_QUEUE, GroupShared, TAIL_GRACE_MS};
pub use task::GroupTask;
