//! The PTT relay (`pttd`) as a library: tests and embedders start the same
//! relay the binary runs.
//!
//! ```no_run
//! # async fn start() -> Result<(), ptt_relay::RelayError> {
//! let relay = ptt_relay::Relay::load(ptt_relay::config::Config::default()).await?;
//! println!("pin {}", relay.cert_path().display());
//! relay.run().await
//! # }
//! ```
//!
//! Layout: [`relay`] wires the parts together; [`session`] serves one
//! terminal's connection; [`group`] owns each talkgroup's floor; [`fanout`]
//! is the voice hot path; [`directory`], [`config`] and [`calllog`] hold the
//! terminals and groups, the settings, and the durable log; [`recording`]
//! writes every burst as an Ogg Opus file off the hot path; [`ops`] serves
//! metrics, the history API and the dashboard on the operations port;
//! [`dispatch`] moves memberships with location (relay patrols, backup
//! calls) and [`private_call`] connects two terminals.
#![forbid(unsafe_code)]

pub mod alert;
pub mod auth;
/// The call-log crate, under the name it had when it was a module of the relay.
pub use ptt_calllog as calllog;
pub mod clock;
pub mod config;
/// The directory crate, under the name it had when it was a module of the relay.
pub use ptt_directory as directory;
pub mod dispatch;
pub mod fanout;
pub mod group;
pub mod link;
pub mod log_sink;
pub mod metrics;
pub mod online;
pub mod ops;
pub mod policy;
pub mod private_call;
pub mod quic;
/// The recordings crate, under the name it had when it was a module of the relay.
pub use ptt_recording as recording;
pub mod relay;
pub mod roster;
pub mod session;
pub mod tls;
pub mod view;
pub mod wire;

pub use relay::{Relay, RelayError};
