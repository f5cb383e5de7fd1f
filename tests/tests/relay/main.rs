//! End-to-end tests of the relay over real QUIC on loopback: sessions, floor control,
//! fan-out, alerts, dispatch, zones, private calls, recordings and crashes.
//!
//! One test binary for the whole area: each binary links the whole relay, so one
//! link instead of one per file keeps an incremental rebuild short.

#[path = "../flood/mod.rs"]
mod flood;

mod admission;
mod alert;
mod child_relay;
mod console;
mod control_errors;
mod crash;
mod disabled;
mod dispatch;
mod fanout;
mod floor;
mod private_call;
mod quality_trust;
mod rate_limits;
mod recording;
mod recording_crash;
mod report_limits;
mod session;
mod shards;
mod speech;
mod voice_streams;
mod zones;
