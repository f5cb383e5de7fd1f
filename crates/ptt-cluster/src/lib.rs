//! Several relays serving one district over NATS (ARCHITECTURE.md §7).
//!
//! A police district cannot have one process between its control room and
//! every guard. Relays that share a NATS cluster split the work; what must
//! never be split is a group's floor: two relays granting the same group to
//! two talkers at once would be the worst failure a PTT system can have.
//!
//! This crate holds what the relays exchange through NATS, so that the
//! relay core stays free of it:
//! - the floor lease ([`FloorLeases`]): each group's floor has exactly one
//!   owning relay at a time, held as a JetStream key-value entry with a
//!   time to live, renewed by its owner and taken over only once it has
//!   expired or been released. Every new owner gets a higher fencing token,
//!   and an owner that cannot renew stops granting before anyone else can
//!   take the floor; a [`HeldFloor`] renews a lease in the background and
//!   answers, without waiting on NATS, whether the floor may be granted now;
//! - floor calls between relays ([`FloorBus`]): a terminal on one relay
//!   asks the owner of its group's floor, whose arbiter decides it beside
//!   its own terminals' requests; replies carry the owner's fencing token;
//! - the floor's news ([`NewsBus`]): the owner publishes what its arbiter
//!   tells members once per group, with the floor gate, and each relay
//!   hands it to its own members;
//! - the control rooms ([`ControlBus`]): what a relay tells its
//!   dispatchers (emergencies, positions, status) reaches every relay's;
//! - alerts with roll call ([`AlertBus`]): a dispatcher's alert reaches
//!   the targets on every relay, and every answer every relay's copy of
//!   the tally (the dispatcher's relay tells the dispatcher);
//! - zone logic's regroupings ([`RegroupBus`]): a backup call or a patrol
//!   on one relay brings in the guards logged in to the others too;
//! - who is where ([`PresenceBus`]): each relay announces its terminals,
//!   the floors it decides and the groups whose voice it takes every
//!   second, and at once when it starts taking a group's voice;
//! - private calls between terminals of two relays ([`CallBus`]): the
//!   caller's relay keeps the call, the callee's rings it, and each tells
//!   the other what its terminal did;
//! - admin actions ([`AdminLog`]): what an administrator does on one relay
//!   reaches every relay, kept on a JetStream stream for those that are
//!   down;
//! - the call log ([`CallLogStream`]): every relay's records reach every
//!   relay's SQLite, kept on a JetStream stream, so any relay answers for
//!   the whole cluster and a dead relay's acknowledged records survive it;
//! - voice between relays ([`VoiceBus`]): a talker's relay publishes each
//!   frame once on the group's subject, and every relay with listeners of
//!   the group gets it once, to fan out to its own.
//!
//! A relay joins with [`Cluster::join`] (`pttd --cluster nats://…`); a
//! relay without `--cluster` never connects to NATS.
#![forbid(unsafe_code)]

mod admin;
mod alert;
mod call_bus;
mod calllog;
mod control;
mod floor_bus;
mod join;
mod keeper;
mod kept;
mod lease;
mod news;
mod peers;
mod presence;
mod regroup;
mod unavailable;
mod voice;

pub use admin::{ADMIN_KEPT, ADMIN_STREAM, AdminEntry, AdminFeed, AdminLog, PendingAdmin};
pub use alert::{AlertBus, AlertFeed, AlertNews, SharedAlert, SharedAnswer};
/// A NATS subject, made once and cloned cheaply (see [`VoiceBus::subject`]).
pub use async_nats::Subject;
pub use call_bus::{CallBus, CallBusError, CallInbox, CallNote, CallReply, PendingNote};
pub use calllog::{
    CALLLOG_KEPT, CALLLOG_MAX_BYTES, CALLLOG_STREAM, CallLogFeed, CallLogStream, PendingRecord,
    SharedRecord,
};
pub use control::{ControlBus, ControlFeed, ControlMessage};
pub use floor_bus::{
    CallRights, FloorAction, FloorAnswer, FloorBus, FloorBusError, FloorCall, FloorInbox,
    FloorReply, PendingFloorCall,
};
pub use join::{Cluster, JoinError, SETTINGS_BUCKET};
pub use keeper::HeldFloor;
pub use kept::{Feed, Pending, Written};
pub use lease::{BUCKET, FloorLeases, Holder, Lease, LeaseConfig, LeaseError, Taken};
pub use news::{Addressee, FloorNews, GroupNews, NewsBus, NewsError};
pub use presence::{PresenceBus, PresenceFeed, PresenceNews, RelayPresence};
pub use regroup::{RegroupBus, RegroupFeed};
pub use unavailable::NatsUnavailable;
pub use voice::{GroupVoice, RemoteFrame, VoiceBus, VoiceBusError};
