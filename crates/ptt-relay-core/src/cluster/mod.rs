//! This relay's side of a cluster (`pttd --cluster`): the queues between the
//! relay's tasks and NATS, and the tasks that hear the other relays.
//!
//! Nothing on the voice path waits on NATS. A talker's frame is handed to
//! [`ClusterLink::offer_voice`] (one non-blocking queue push, the same
//! shared buffer the listeners got) and a publisher task sends the queue's
//! frames in batches, one flush per batch. A group owner's messages for
//! terminals on other relays go the same way through
//! [`ClusterLink::offer_news`], in the order its task made them.
//!
//! What the relay logs is handed to every relay's call log through the
//! cluster's stream (`calllog_out`, `calllog_in`); a record the relay
//! acknowledges waits until the stream holds it.
//!
//! Which relay decides a group's floor, and how a group task follows
//! another relay's decisions, is the group's business (`group::seat`).

pub mod admin_in;
pub mod alerts_in;
mod alerts_out;
pub mod calllog_in;
mod calllog_out;
pub mod calls_in;
pub mod control_in;
pub mod elsewhere;
pub mod link;
pub mod presence;
pub mod regroup_in;
pub mod voice_in;

pub use link::ClusterLink;
