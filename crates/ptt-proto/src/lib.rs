//! Wire types and codecs of the PTT relay: no I/O, no async, no panics.
//!
//! Everything that crosses the network between a terminal and the relay is
//! defined here, so the relay, the client library and the fuzzers agree on
//! one implementation:
//!
//! - [`pb`]: the control messages generated from `proto/ptt.proto`
//!   ([`pb::ClientMessage`], [`pb::ServerMessage`] and their bodies).
//! - [`framing`]: how control messages are delimited on the QUIC control
//!   stream (varint length prefix, at most [`framing::MAX_MESSAGE_SIZE`]),
//!   with an incremental [`framing::Decoder`] for partial reads.
//! - [`voice`]: the 24-byte voice datagram header (`proto/voice.md`),
//!   parsed zero-copy over [`bytes::Bytes`], and the in-place talker stamp of
//!   the relay's hot path.
//! - [`voice_stream`]: the voice stream fallback's records (§4), for paths
//!   without QUIC datagrams.
//! - [`opus`]: Opus packet validation (RFC 6716 §3), so the relay forwards
//!   only what is really Opus without decoding it.
//!
//! Every decoder returns a typed error on bad input and never panics; each
//! is fuzzed (see `fuzz/`).
#![forbid(unsafe_code)]

pub mod framing;
pub mod opus;
pub mod voice;
pub mod voice_stream;

/// Re-export of the prost version the generated types use, so that callers
/// encode and decode with the same [`prost::Message`] trait.
pub use prost;

/// Control messages of `proto/ptt.proto` (package `ptt.v1`).
///
/// Generated at build time by prost from the schema; the comments of the
/// schema are the documentation of each type. Enum values drop their prefix:
/// `PRIORITY_EMERGENCY` is [`pb::Priority::Emergency`]. Oneof bodies live in
/// a module named after the message, e.g.
/// [`pb::client_message::Body::FloorRequest`].
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    rustdoc::all
)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/ptt.v1.rs"));

    /// Hand-written so the secret never appears in logs.
    impl core::fmt::Debug for Hello {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Hello")
                .field("protocol_version", &self.protocol_version)
                .field("terminal_id", &self.terminal_id)
                .field(
                    "secret",
                    &format_args!("<{} bytes redacted>", self.secret.len()),
                )
                .field("client_version", &self.client_version)
                .field("capabilities", &self.capabilities)
                .field(
                    "resume_token",
                    &format_args!("<{} bytes redacted>", self.resume_token.len()),
                )
                .finish()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hello_debug_redacts_secret() {
        let hello = crate::pb::Hello {
            terminal_id: 1001,
            secret: bytes::Bytes::from_static(b"hunter2"),
            ..Default::default()
        };
        let shown = format!("{hello:?}");
        assert!(
            shown.contains("1001") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn hello_debug_redacts_the_resumption_credential() {
        let hello = crate::pb::Hello {
            terminal_id: 1001,
            resume_token: bytes::Bytes::from_static(b"bearer-credential"),
            ..Default::default()
        };
        let shown = format!("{hello:?}");
        assert!(
            !shown.contains("bearer") && shown.contains("<17 bytes redacted>"),
            "{shown}"
        );
    }
}
