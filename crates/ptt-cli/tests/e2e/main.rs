//! End-to-end tests of the `ptt` command against a real relay on loopback.
//!
//! One test binary: each links the relay and the client, so one link instead of one
//! per file keeps an incremental rebuild short.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod dispatch;
mod dispatch_call_losses;
mod dispatch_calls;
mod dispatch_patrol;
