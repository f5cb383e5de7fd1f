//! Test harness shared by the end-to-end tests in `tests/tests/`: a real
//! relay on a loopback port, a directory built for the test, and a small
//! real QUIC client speaking the wire protocol of `proto/`.
//!
//! The client here is deliberately minimal — it speaks the protocol and
//! nothing more — so that a test says exactly what goes over the wire.
#![allow(missing_docs, unreachable_pub)]

pub mod bystander;
pub mod client;
pub mod clients;
pub mod console;
pub mod control;
pub mod directory;
pub mod geo;
pub mod nats;
pub mod opus;
pub mod pttd;
pub mod relay;

/// The lossy proxy between test terminals and the relay (the `ptt-link`
/// crate, which `ptt load --link` uses too).
pub use ptt_link as lossy;

pub use client::Client;
pub use directory::TestDirectory;
pub use relay::TestRelay;

use std::time::Duration;

/// How long a test waits for something that should happen at once on
/// loopback before it fails (generous: the CI machine is shared and slow).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Installs a log subscriber once, honouring `RUST_LOG` (quiet by default).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
