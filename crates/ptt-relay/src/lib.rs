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
//! This crate is the composition root: [`config`] reads the settings (file, environment,
//! flags) and [`relay`] builds the parts from them — the directory, the call log, the
//! recorder, the relay core (`ptt-relay-core`) and the operations port (`ptt-ops`) —
//! handing each the handles it uses, then runs them and shuts them down in order. Nothing
//! imports it but the `pttd` binary, the tests and the benches.
#![forbid(unsafe_code)]

mod cluster;
pub mod config;
mod group_set;
pub mod relay;
mod shards;

pub use relay::{Relay, RelayError};
