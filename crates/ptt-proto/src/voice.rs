//! The voice datagram (`proto/voice.md`): a fixed 24-byte big-endian header
//! followed by exactly one Opus packet.
//!
//! ```text
//!  0       1       2               6               10              14      16              24
//! +-------+-------+---------------+---------------+---------------+-------+---------------+------
//! |ver|knd| flags |   group id    |   talker id   |   burst id    |  seq  | sender time µs| Opus…
//! +-------+-------+---------------+---------------+---------------+-------+---------------+------
//! ```
//!
//! Parsing is zero-copy: [`VoiceDatagram::parse`] takes the received
//! [`Bytes`] and hands back the Opus payload as a slice of the same buffer.
//! The relay stamps the authenticated talker id and burst id into the buffer
//! in place ([`stamp`]) and then shares that one buffer with every listener.

use bytes::{BufMut, Bytes, BytesMut};

use crate::opus::{self, OpusError};

/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 24;

/// Header version this crate speaks (high 4 bits of byte 0).
pub const VERSION: u8 = 1;

/// Largest voice datagram (header + Opus) anyone may send: 1100 bytes.
///
/// QUIC guarantees only 1200-byte UDP payloads on a path (RFC 9000 §14). A
/// 1-RTT packet spends up to 25 bytes on its short header, 16 on the AEAD tag
/// and 3 on the DATAGRAM frame header, which leaves 1156 bytes; 1100 keeps a
/// margin so a voice datagram fits any QUIC path, even alongside a small
/// frame. Real voice is ~84 bytes (60 bytes of Opus per 20 ms at 24 kbit/s),
/// so the limit only bounds abuse. See `proto/voice.md` §3.2.
pub const MAX_DATAGRAM_SIZE: usize = 1100;

/// Largest Opus packet that fits in [`MAX_DATAGRAM_SIZE`].
pub const MAX_PAYLOAD_LEN: usize = MAX_DATAGRAM_SIZE - HEADER_LEN;

/// Byte offsets of the header fields, for code that reads or patches raw
/// buffers (e.g. a batched sender).
pub mod offset {
    /// Version (high nibble) and kind (low nibble).
    pub const VERSION_KIND: usize = 0;
    /// Flags byte.
    pub const FLAGS: usize = 1;
    /// Group id, u32 big-endian.
    pub const GROUP_ID: usize = 2;
    /// Talker id, u32 big-endian; stamped by the relay.
    pub const TALKER_ID: usize = 6;
    /// Burst id, u32 big-endian; stamped by the relay.
    pub const BURST_ID: usize = 10;
    /// Sequence number, u16 big-endian.
    pub const SEQUENCE: usize = 14;
    /// Sender timestamp in µs, u64 big-endian.
    pub const TIMESTAMP_US: usize = 16;
}

/// What a datagram carries (low 4 bits of byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// 0: one Opus packet of a talk burst.
    Voice = 0,
    /// 1: keep-alive / path probe. The payload is opaque padding (may be
    /// empty) that receivers ignore; the relay never forwards it.
    KeepAlive = 1,
}

impl Kind {
    /// The kind for a nibble value, if this version knows it.
    #[must_use]
    pub const fn from_nibble(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Voice),
            1 => Some(Self::KeepAlive),
            _ => None,
        }
    }
}

/// The flags byte. Only [`Flags::LAST_FRAME`] is defined; the other bits are
/// reserved: senders write 0, receivers (and the relay) ignore them and
/// forward them unchanged, so a later version can define them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// Bit 0: this is the last frame of the burst (the talker released).
    pub const LAST_FRAME: u8 = 0x01;

    /// True if the last-frame bit is set.
    #[must_use]
    pub const fn last_frame(self) -> bool {
        self.0 & Self::LAST_FRAME != 0
    }
}

/// The decoded 24-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VoiceHeader {
    /// What the datagram carries.
    pub kind: Kind,
    /// Flags (last frame of burst).
    pub flags: Flags,
    /// Group the voice is for.
    pub group_id: u32,
    /// Talking terminal: 0 from a client; the relay overwrites it with the
    /// authenticated sender, so receivers can trust it.
    pub talker_id: u32,
    /// Burst id from `FloorGranted`; the relay overwrites it with the burst
    /// it granted.
    pub burst_id: u32,
    /// Sequence number within the burst: 0 for the first frame, +1 per
    /// datagram, wrapping. Compare with [`seq_cmp`].
    pub sequence: u16,
    /// Sender's clock in µs when the frame was captured; opaque to the relay.
    pub timestamp_us: u64,
}

/// Why a datagram was rejected. In every case the relay drops the datagram
/// and counts it under the variant; a client drops it likewise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoiceError {
    /// Fewer bytes than the 24-byte header.
    #[error("datagram of {0} bytes is shorter than the 24-byte header")]
    TooShort(usize),
    /// The version nibble is not 1: a peer speaking another version.
    #[error("unsupported voice header version {0}")]
    BadVersion(u8),
    /// The kind nibble is reserved in this version.
    #[error("unknown datagram kind {0}")]
    UnknownKind(u8),
    /// Larger than [`MAX_DATAGRAM_SIZE`].
    #[error("datagram of {0} bytes exceeds {MAX_DATAGRAM_SIZE}")]
    TooLarge(usize),
    /// A voice datagram without an Opus packet.
    #[error("voice datagram without payload")]
    EmptyPayload,
    /// The payload is not a valid Opus packet.
    #[error("invalid Opus packet: {0}")]
    BadOpus(#[from] OpusError),
}

/// Why a datagram could not be built. The caller has a bug (or an encoder
/// misconfigured for too high a bitrate); nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoiceEncodeError {
    /// A voice datagram needs at least one Opus byte (the TOC).
    #[error("voice datagram without payload")]
    EmptyPayload,
    /// Header + payload would exceed [`MAX_DATAGRAM_SIZE`].
    #[error("datagram of {0} bytes exceeds {MAX_DATAGRAM_SIZE}")]
    TooLarge(usize),
}

/// Why [`stamp`] could not patch a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StampError {
    /// The buffer is shorter than the header; it cannot be a datagram that
    /// passed [`VoiceDatagram::parse`].
    #[error("buffer of {0} bytes is shorter than the 24-byte header")]
    TooShort(usize),
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl VoiceHeader {
    /// Decodes the header at the front of `buf`, checking version and kind
    /// only (no size or payload checks; see [`VoiceDatagram::parse`]).
    pub fn parse(buf: &[u8]) -> Result<Self, VoiceError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(VoiceError::TooShort(buf.len()));
        };
        let version = h[0] >> 4;
        if version != VERSION {
            return Err(VoiceError::BadVersion(version));
        }
        let kind = Kind::from_nibble(h[0] & 0x0f).ok_or(VoiceError::UnknownKind(h[0] & 0x0f))?;
        Ok(Self {
            kind,
            flags: Flags(h[offset::FLAGS]),
            group_id: read_u32(h, offset::GROUP_ID),
            talker_id: read_u32(h, offset::TALKER_ID),
            burst_id: read_u32(h, offset::BURST_ID),
            sequence: u16::from_be_bytes([h[offset::SEQUENCE], h[offset::SEQUENCE + 1]]),
            timestamp_us: u64::from_be_bytes([
                h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23],
            ]),
        })
    }

    /// Appends the 24 header bytes to `dst`.
    pub fn write(&self, dst: &mut impl BufMut) {
        dst.put_u8(VERSION << 4 | self.kind as u8);
        dst.put_u8(self.flags.0);
        dst.put_u32(self.group_id);
        dst.put_u32(self.talker_id);
        dst.put_u32(self.burst_id);
        dst.put_u16(self.sequence);
        dst.put_u64(self.timestamp_us);
    }
}

/// A parsed datagram: the header and the Opus payload, both views of the
/// received buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceDatagram {
    /// The decoded header.
    pub header: VoiceHeader,
    /// The Opus packet (for [`Kind::KeepAlive`], the ignored padding); a
    /// slice of the received buffer, not a copy.
    pub payload: Bytes,
    /// Frame count and duration of the Opus packet; `None` for keep-alives.
    pub opus: Option<opus::PacketInfo>,
}

impl VoiceDatagram {
    /// Parses and validates a received datagram: header, size limit, and,
    /// for voice, a non-empty, valid Opus packet (RFC 6716 §3.4).
    /// Never panics; never copies the payload.
    pub fn parse(datagram: Bytes) -> Result<Self, VoiceError> {
        let header = VoiceHeader::parse(&datagram)?;
        if datagram.len() > MAX_DATAGRAM_SIZE {
            return Err(VoiceError::TooLarge(datagram.len()));
        }
        let payload = datagram.slice(HEADER_LEN..);
        let opus = match header.kind {
            Kind::Voice => {
                if payload.is_empty() {
                    return Err(VoiceError::EmptyPayload);
                }
                Some(opus::parse(&payload)?)
            }
            Kind::KeepAlive => None,
        };
        Ok(Self {
            header,
            payload,
            opus,
        })
    }
}

/// Appends a complete voice datagram (header with [`Kind::Voice`] forced,
/// then `opus`) to `dst`.
///
/// The Opus packet is not validated here (it comes from our own encoder);
/// only emptiness and the size limit are checked, and nothing is written on
/// error.
pub fn encode(
    header: &VoiceHeader,
    opus: &[u8],
    dst: &mut BytesMut,
) -> Result<(), VoiceEncodeError> {
    if opus.is_empty() {
        return Err(VoiceEncodeError::EmptyPayload);
    }
    let len = HEADER_LEN + opus.len();
    if len > MAX_DATAGRAM_SIZE {
        return Err(VoiceEncodeError::TooLarge(len));
    }
    dst.reserve(len);
    VoiceHeader {
        kind: Kind::Voice,
        ..*header
    }
    .write(dst);
    dst.put_slice(opus);
    Ok(())
}

/// Overwrites the talker id and burst id of the datagram in `buf`, in place.
///
/// This is the relay's hot path: once per incoming datagram, before the
/// buffer is frozen and shared with every listener. The relay gets `Bytes`
/// from the connection; `Bytes::try_into_mut` turns it into a `BytesMut`
/// without copying when the relay holds the only reference (see
/// [`into_stampable`]).
pub fn stamp(buf: &mut [u8], talker_id: u32, burst_id: u32) -> Result<(), StampError> {
    let Some(ids) = buf.get_mut(offset::TALKER_ID..offset::BURST_ID + 4) else {
        return Err(StampError::TooShort(buf.len()));
    };
    ids[..4].copy_from_slice(&talker_id.to_be_bytes());
    ids[4..].copy_from_slice(&burst_id.to_be_bytes());
    Ok(())
}

/// Turns a received datagram into a mutable buffer for [`stamp`]: free when
/// `datagram` is the only handle to its memory (the usual case right after
/// receiving), a copy of the (small) datagram otherwise.
#[must_use]
pub fn into_stampable(datagram: Bytes) -> BytesMut {
    datagram
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]))
}

/// Compares two sequence numbers of one burst with wrap-around (serial number
/// arithmetic, RFC 1982): `a.wrapping_sub(b)` read as a signed distance.
///
/// Positive: `a` is newer than `b` by that many frames; negative: older;
/// zero: the same frame (a duplicate). A distance of exactly 32768 is
/// ambiguous and reported as older (-32768), so a receiver drops it.
#[must_use]
pub const fn seq_cmp(a: u16, b: u16) -> i16 {
    a.wrapping_sub(b) as i16
}

/// True if `a` comes after `b` in the burst (see [`seq_cmp`]).
#[must_use]
pub const fn seq_newer(a: u16, b: u16) -> bool {
    seq_cmp(a, b) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header of the example in voice.md.
    const EXAMPLE: [u8; 27] = [
        0x10, 0x01, // v1 voice, last frame
        0x00, 0x00, 0x00, 0x07, // group 7
        0x00, 0x00, 0x03, 0xe9, // talker 1001
        0x00, 0x00, 0x00, 0x2a, // burst 42
        0x01, 0x00, // seq 256
        0x00, 0x06, 0x1a, 0x80, 0x1f, 0x3a, 0x2e, 0x40, // ts
        0x48, 0xaa, 0xbb, // Opus: config 9 (SILK WB 20 ms), code 0
    ];

    #[test]
    fn parses_example() {
        let d = VoiceDatagram::parse(Bytes::from_static(&EXAMPLE)).unwrap();
        assert_eq!(
            d.header,
            VoiceHeader {
                kind: Kind::Voice,
                flags: Flags(1),
                group_id: 7,
                talker_id: 1001,
                burst_id: 42,
                sequence: 256,
                timestamp_us: 0x0006_1a80_1f3a_2e40,
            }
        );
        assert!(d.header.flags.last_frame());
        assert_eq!(&d.payload[..], &[0x48, 0xaa, 0xbb]);
        assert_eq!(d.opus.unwrap().duration_us(), 20_000);
        let mut again = BytesMut::new();
        encode(&d.header, &d.payload, &mut again).unwrap();
        assert_eq!(&again[..], &EXAMPLE[..]);
    }

    #[test]
    fn rejects() {
        let ok = Bytes::from_static(&EXAMPLE);
        assert_eq!(
            VoiceDatagram::parse(ok.slice(..23)),
            Err(VoiceError::TooShort(23))
        );
        assert_eq!(
            VoiceDatagram::parse(ok.slice(..24)),
            Err(VoiceError::EmptyPayload)
        );
        let mut b = EXAMPLE;
        b[0] = 0x20;
        assert_eq!(
            VoiceDatagram::parse(Bytes::copy_from_slice(&b)),
            Err(VoiceError::BadVersion(2))
        );
        b[0] = 0x12;
        assert_eq!(
            VoiceDatagram::parse(Bytes::copy_from_slice(&b)),
            Err(VoiceError::UnknownKind(2))
        );
        // Code 1 with odd payload: not Opus.
        b[0] = 0x10;
        b[24] = 0x49;
        assert_eq!(
            VoiceDatagram::parse(Bytes::copy_from_slice(&b[..26])),
            Err(VoiceError::BadOpus(OpusError::UnevenFrames))
        );
        let mut big = EXAMPLE[..24].to_vec();
        big.push(0x48);
        big.resize(MAX_DATAGRAM_SIZE + 1, 0);
        assert_eq!(
            VoiceDatagram::parse(Bytes::from(big)),
            Err(VoiceError::TooLarge(1101))
        );
    }

    #[test]
    fn keep_alive_may_be_empty() {
        let mut b = EXAMPLE[..24].to_vec();
        b[0] = 0x11;
        let d = VoiceDatagram::parse(Bytes::from(b)).unwrap();
        assert_eq!((d.header.kind, d.opus), (Kind::KeepAlive, None));
    }

    #[test]
    fn encode_errors() {
        let h = VoiceDatagram::parse(Bytes::from_static(&EXAMPLE))
            .unwrap()
            .header;
        let mut buf = BytesMut::new();
        assert_eq!(
            encode(&h, &[], &mut buf),
            Err(VoiceEncodeError::EmptyPayload)
        );
        assert_eq!(
            encode(&h, &[0; MAX_PAYLOAD_LEN + 1], &mut buf),
            Err(VoiceEncodeError::TooLarge(1101))
        );
        assert!(buf.is_empty());
        encode(&h, &[0; MAX_PAYLOAD_LEN], &mut buf).unwrap();
        assert_eq!(buf.len(), MAX_DATAGRAM_SIZE);
    }

    #[test]
    fn stamps_in_place_without_copy() {
        let received = Bytes::from(EXAMPLE.to_vec());
        let ptr = received.as_ptr();
        let mut buf = into_stampable(received);
        stamp(&mut buf, 0xdead_beef, 9).unwrap();
        let shared = buf.freeze();
        assert_eq!(shared.as_ptr(), ptr, "no copy");
        let d = VoiceDatagram::parse(shared).unwrap();
        assert_eq!((d.header.talker_id, d.header.burst_id), (0xdead_beef, 9));
        assert_eq!(d.header.sequence, 256);
        assert_eq!(stamp(&mut [0; 13], 1, 1), Err(StampError::TooShort(13)));
    }

    #[test]
    fn sequence_wraps() {
        assert!(seq_newer(1, 0));
        assert!(seq_newer(0, 65535));
        assert!(!seq_newer(65535, 0));
        assert_eq!(seq_cmp(2, 65534), 4);
        assert_eq!(seq_cmp(65534, 2), -4);
        assert_eq!(seq_cmp(5, 5), 0);
        assert_eq!(seq_cmp(32768, 0), i16::MIN);
        assert_eq!(seq_cmp(0, 32768), i16::MIN);
    }
}
