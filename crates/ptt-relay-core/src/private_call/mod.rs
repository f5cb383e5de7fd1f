//! Private calls: one terminal calls another, the callee answers, and the two talk with
//! ordinary floor control in a temporary group.
//!
//! The temporary groups are a pool started with the relay (`private-calls`, ids from
//! [`PRIVATE_CALL_GROUP_BASE`]): each has its own group task and floor like any talkgroup,
//! so voice, floor, recording and the call log need nothing special. A call holds one
//! from setup to hang-up. The calls' state is one small map behind a mutex, touched only
//! by control requests (setup, answer, hang-up, disconnect), never by voice.
//!
//! Joins and leaves of a call's group are sequenced per group (an async mutex per slot):
//! the answer's joins and the hang-up's leaves never interleave, so a slot goes back to
//! the pool only once both parties have left it (in a call between relays, once the
//! caller's relay's party has), and a party's stored link (not whatever session is
//! current) is what leaves, so a lost connection leaves too.
//!
//! Who may call whom: a dispatcher anyone and anyone a dispatcher; otherwise two terminals
//! that share a group. An emergency private call pre-empts the callee's other call.
//!
//! In a cluster, a call to a terminal logged in to another relay takes one of the caller's
//! relay's share of the temporary groups every relay has for such calls (groups of the
//! cluster, whose floor and voice cross relays as any group's do); the two relays tell
//! each other what their own terminal did (`across`), and ask each other every second
//! whether the other still has the call, so a lost note or a restarted relay leaves no
//! half of a call behind.

mod across;
mod answer;
mod call_setup;
mod hang_up;
mod join;
mod notes;
pub mod other_relays;
mod pool;
mod report;
mod ringing;

pub use across::{check_calls_with_other_relays, heard};
pub use answer::{accept, reject};
pub use call_setup::{DEFAULT_ANSWER_TIMEOUT, setup};
pub use hang_up::{disconnected, end};
pub use other_relays::OtherRelays;
pub use pool::{
    CROSS_RELAY_CALL_GROUP_BASE, CROSS_RELAY_CALLS_PER_RELAY, MAX_CLUSTER_RELAYS,
    PRIVATE_CALL_GROUP_BASE, PrivateCalls, cross_relay_group_ids,
};
