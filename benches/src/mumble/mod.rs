//! A Mumble load client, for the fan-out bench's baseline: the same
//! scenario against Debian's mumble-server (1.3, the voice server this
//! relay is measured against), in the same run as the relay.
//!
//! Mumble carries control on TLS over TCP and voice in UDP datagrams
//! encrypted with OCB2-AES128. Its users here are real clients of the
//! server's protocol: they log in, the server hands out keys, the UDP path
//! is proven by an encrypted ping echo, the talkers send Opus-sized frames
//! (the bench's speech packets, their first 8 bytes replaced by the send
//! time) and the listeners decrypt what the server forwards. What is
//! compared is the server's CPU per frame heard and the one-way latency to
//! the listener's socket (kernel receive time), as for the relay.

pub mod client;
pub mod control;
pub mod crypt;
mod load;
pub mod server;
pub mod voice;

pub use load::{MumbleLoad, MumbleRun, run};
