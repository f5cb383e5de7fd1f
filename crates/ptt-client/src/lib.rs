//! Client library of the PTT relay: how terminals, the `ptt` command and the
//! load generator talk to `pttd`.
#![forbid(unsafe_code)]

pub mod codec;
pub mod jitter;

mod answers;
mod auto;
pub mod client;
mod clock;
pub mod config;
mod connection;
pub mod error;
pub mod events;
mod link;
mod liveness;
mod membership;
mod private_call;
pub mod quality;
pub mod reconnect;
mod resume;
mod shared;
pub mod talk;
pub mod tls;
mod voice_in;

pub use client::{Client, ClientStats, FloorOutcome};
pub use config::{ClientConfig, ReconnectPolicy, Trust};
pub use error::ClientError;
pub use events::{Event, Events, VoiceFrame};
pub use quality::QualityMeter;
pub use talk::{Grant, Talk, TalkEnd, TalkError, TalkState, TalkSummary};

/// The control protocol version this client speaks (`Hello.protocol_version`).
pub const PROTOCOL_VERSION: u32 = 1;
