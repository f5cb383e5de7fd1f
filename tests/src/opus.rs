//! Opus packets for voice tests.
//!
//! The relay validates packets (RFC 6716 §3) but never decodes them, so a
//! structurally valid packet is what the fan-out tests need: one 20 ms SILK
//! wideband frame (TOC config 9, mono, code 0) whose body encodes the frame's
//! sequence number, so a listener can tell frames apart.

use bytes::{BufMut, Bytes, BytesMut};
use ptt_proto::voice::{self, Kind, VoiceHeader};

/// TOC byte: config 9 (SILK-only, wideband, 20 ms), mono, one frame.
pub const TOC_SILK_WB_20MS: u8 = 9 << 3;

/// A 20 ms Opus packet of `len` bytes (at least 3) tagged with `tag`.
pub fn packet(tag: u16, len: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(len.max(3));
    buf.put_u8(TOC_SILK_WB_20MS);
    buf.put_u16(tag);
    buf.resize(len.max(3), 0x5a);
    buf.freeze()
}

/// A complete voice datagram from a client: talker 0 (the relay stamps it).
pub fn datagram(group: u32, burst: u32, sequence: u16, timestamp_us: u64) -> Bytes {
    let header = VoiceHeader {
        kind: Kind::Voice,
        flags: voice::Flags(0),
        group_id: group,
        talker_id: 0,
        burst_id: burst,
        sequence,
        timestamp_us,
    };
    let mut buf = BytesMut::new();
    voice::encode(&header, &packet(sequence, 60), &mut buf).expect("fits a datagram");
    buf.freeze()
}
