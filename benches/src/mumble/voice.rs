//! Mumble's UDP voice packets (the 1.3 format), before encryption.
//!
//! A packet starts with a byte of type (high 3 bits) and target (low 5).
//! A client's Opus packet then carries its sequence number, the frame's
//! length (bit 13 set on a burst's last frame) and the frame. The server
//! forwards it with the talker's session number inserted after the first
//! byte. Numbers are Mumble's variable-length integers: 1 to 5 bytes, the
//! leading bits of the first byte saying how many follow.

/// Packet type of an Opus voice frame.
const OPUS: u8 = 4;
/// Packet type of a ping, echoed by the server.
const PING: u8 = 1;
/// Set in an Opus frame's length on the burst's last frame.
const TERMINATOR: u64 = 0x2000;

/// Appends `value` in Mumble's variable-length encoding (values up to
/// 2^32; larger ones are not needed here).
pub fn put_varint(out: &mut Vec<u8>, value: u32) {
    let v = value;
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x4000 {
        out.extend_from_slice(&[0x80 | (v >> 8) as u8, v as u8]);
    } else if v < 0x20_0000 {
        out.extend_from_slice(&[0xC0 | (v >> 16) as u8, (v >> 8) as u8, v as u8]);
    } else if v < 0x1000_0000 {
        out.extend_from_slice(&[
            0xE0 | (v >> 24) as u8,
            (v >> 16) as u8,
            (v >> 8) as u8,
            v as u8,
        ]);
    } else {
        out.push(0xF0);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Reads one variable-length integer from the front of `input`, moving it
/// past; `None` if it is cut short or of a form this reader does not take.
pub fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = input.split_first()?;
    let (value, used) = match first {
        0x00..=0x7F => (u64::from(first), 0),
        0x80..=0xBF => (be(u64::from(first & 0x3F), rest, 1)?, 1),
        0xC0..=0xDF => (be(u64::from(first & 0x1F), rest, 2)?, 2),
        0xE0..=0xEF => (be(u64::from(first & 0x0F), rest, 3)?, 3),
        0xF0..=0xF3 => (be(0, rest, 4)?, 4),
        0xF4..=0xF7 => (be(0, rest, 8)?, 8),
        _ => return None,
    };
    *input = &rest[used..];
    Some(value)
}

/// `high` followed by the first `n` bytes of `rest`, big-endian.
fn be(high: u64, rest: &[u8], n: usize) -> Option<u64> {
    let bytes = rest.get(..n)?;
    Some(bytes.iter().fold(high, |acc, &b| (acc << 8) | u64::from(b)))
}

/// A client's Opus voice packet: frame `sequence` of the burst, `last` on
/// its final frame, sent to the talker's channel (target 0).
#[must_use]
pub fn opus_packet(sequence: u32, frame: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 8);
    out.push(OPUS << 5);
    put_varint(&mut out, sequence);
    let len = frame.len() as u64 | if last { TERMINATOR } else { 0 };
    put_varint(
        &mut out,
        u32::try_from(len).expect("a voice frame's length"),
    );
    out.extend_from_slice(frame);
    out
}

/// A ping packet carrying `stamp`.
#[must_use]
pub fn ping_packet(stamp: u32) -> Vec<u8> {
    let mut out = vec![PING << 5];
    put_varint(&mut out, stamp);
    out
}

/// True if `plain` is a ping (the server's echo of ours).
#[must_use]
pub fn is_ping(plain: &[u8]) -> bool {
    plain.first().is_some_and(|b| b >> 5 == PING)
}

/// An Opus frame as the server forwards it.
#[derive(Debug, PartialEq, Eq)]
pub struct Heard<'a> {
    /// The talker's session number.
    pub session: u64,
    /// The frame's sequence number in its burst.
    pub sequence: u64,
    /// The Opus frame.
    pub frame: &'a [u8],
}

/// Reads a server's Opus packet; `None` for another type or a malformed
/// one.
#[must_use]
pub fn heard(plain: &[u8]) -> Option<Heard<'_>> {
    let (&first, mut rest) = plain.split_first()?;
    if first >> 5 != OPUS {
        return None;
    }
    let session = take_varint(&mut rest)?;
    let sequence = take_varint(&mut rest)?;
    let len = usize::try_from(take_varint(&mut rest)? & (TERMINATOR - 1)).ok()?;
    let frame = rest.get(..len)?;
    Some(Heard {
        session,
        sequence,
        frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [
            0,
            1,
            0x7F,
            0x80,
            0x3FFF,
            0x4000,
            0x1F_FFFF,
            0x20_0000,
            0xFFF_FFFF,
            0x1000_0000,
            u32::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut input = out.as_slice();
            assert_eq!(take_varint(&mut input), Some(u64::from(value)));
            assert!(input.is_empty(), "{value:#x} read whole");
        }
        assert_eq!(take_varint(&mut &[0x80][..]), None, "cut short");
    }

    #[test]
    fn a_forwarded_packet_is_the_clients_with_the_session_inserted() {
        let frame = [9u8; 80];
        let sent = opus_packet(300, &frame, true);
        let mut forwarded = vec![sent[0]];
        put_varint(&mut forwarded, 42);
        forwarded.extend_from_slice(&sent[1..]);
        assert_eq!(
            heard(&forwarded),
            Some(Heard {
                session: 42,
                sequence: 300,
                frame: &frame,
            })
        );
        assert!(is_ping(&ping_packet(5)));
        assert_eq!(heard(&ping_packet(5)), None);
    }
}
