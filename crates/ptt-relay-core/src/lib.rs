//! The relay core: everything between a terminal's QUIC connection and the groups it talks
//! in.
//!
//! [`admission`] decides which connection attempts get a handshake and a session slot;
//! [`session`] serves one terminal's connection (handshake, control requests, voice in);
//! [`group`] owns each talkgroup's floor in one task; [`fanout`] is the voice hot path
//! ([`stream_out`] carries it to listeners without QUIC datagrams);
//! [`dispatch`] moves memberships with location (relay patrols, backup calls);
//! [`alert`] runs roll calls; [`private_call`] connects two terminals; [`roster`] layers
//! run-time membership changes over the directory; [`online`] knows who is online;
//! [`quic`] and [`tls`] set up the endpoints, one per [`shard`]. [`view::RelayView`] is what the operations
//! port may read.
//!
//! This crate owns the relay's live state and is handed everything else: the directory,
//! the call log and the recorder come from their crates, the settings from the
//! composition root (`ptt-relay`), which builds each part with the handles it uses. It
//! knows nothing of configuration files, HTTP or how it is started.
#![forbid(unsafe_code)]

pub mod admission;
pub mod alert;
pub mod auth;
pub mod browser;
pub(crate) mod carrier;
pub mod clock;
pub mod cluster;
pub mod dispatch;
pub mod fanout;
pub mod group;
pub mod link;
pub mod log_sink;
pub mod metrics;
pub mod online;
pub mod policy;
pub mod private_call;
pub mod quic;
pub mod roster;
pub mod session;
pub mod shard;
pub mod stream_out;
pub mod tls;
pub mod view;
pub mod wire;
