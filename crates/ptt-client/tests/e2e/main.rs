//! Tests of the client library: the codec, the jitter buffer, and sessions against a
//! real relay on loopback.
//!
//! One test binary: each links the relay and the client, so one link instead of one
//! per file keeps an incremental rebuild short.

#[path = "../common/mod.rs"]
mod common;

mod codec;
mod jitter;
mod jitter_cases;
mod regroup;
mod session;
mod session_login;
