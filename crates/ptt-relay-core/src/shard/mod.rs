//! Shards: the relay's voice datapath split per core.
//!
//! Each shard is one thread running a single-threaded event loop, with its
//! own UDP socket on the relay's port and its own QUIC endpoint; a
//! connection lives on the shard whose socket its first packet reached, and
//! every later packet of it reaches that shard too, whatever address it
//! comes from ([`steer`]). A voice frame is parsed, checked and stamped once,
//! on its talker's shard, which hands it to its own listeners directly and
//! to each other shard with listeners of the group through that shard's one
//! bounded queue ([`post`]): one wake per shard and batch, not one per
//! listener on another core.
//!
//! [`wire`] times, per shard, a frame's way from arrival to the kernel.
//!
//! How the threads are started and pinned is the composition root's
//! business (`ptt-relay`); this module gives it the sockets and the queues.

pub mod post;
pub mod steer;
pub mod wire;

/// Most shards a relay runs: a frame's fan-out marks the shards it must
/// reach in one 64-bit mask.
pub const MAX_SHARDS: usize = 64;
