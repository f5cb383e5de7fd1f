//! Control-stream framing: each protobuf message is prefixed by its length as
//! a protobuf varint (the same layout as prost's `encode_length_delimited`).
//!
//! A QUIC stream is a byte stream: a read may return half a length prefix or
//! three messages at once. [`Decoder`] buffers what arrives and yields whole
//! messages; [`encode`] appends one framed message to a buffer. Messages larger
//! than [`MAX_MESSAGE_SIZE`] are refused on both sides, which bounds the memory
//! a peer can make us buffer.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message;

/// Largest control message body (without its length prefix) either side may
/// send: 64 KiB. Far above any legitimate message (a `HelloOk` with a few
/// hundred groups is a few KiB) and small enough that a hostile peer cannot
/// make the relay buffer much per connection.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Longest varint protobuf allows (a full u64).
const MAX_VARINT_LEN: usize = 10;

/// Why a message could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message is larger than the size limit. Nothing was written;
    /// the caller must split the content (e.g. fewer entries per `AlertTally`)
    /// or not send it.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Encoded size of the message.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Why the control stream could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix announces a message larger than the limit. The stream
    /// cannot be resynchronised: answer `Error{MESSAGE_TOO_LARGE}` if possible
    /// and close the connection.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced length (or a lower bound of it, when the prefix was
        /// rejected before it was complete).
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The length prefix is not a valid varint (more than 10 bytes, or
    /// overflowing u64). The stream is garbage: close the connection.
    #[error("malformed varint length prefix")]
    MalformedLength,
    /// The frame was complete but its body is not a valid protobuf message of
    /// the expected type. The frame has been consumed, so the stream is still
    /// in sync: answer `Error{MALFORMED}` and go on, or close.
    #[error("invalid protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
}

/// Appends `msg`, prefixed by its varint length, to `dst`.
///
/// Fails without writing anything if the message is larger than
/// [`MAX_MESSAGE_SIZE`].
pub fn encode<M: Message>(msg: &M, dst: &mut BytesMut) -> Result<(), EncodeError> {
    encode_with_limit(msg, dst, MAX_MESSAGE_SIZE)
}

/// Like [`encode`] with a custom size limit (tests, or a stricter peer).
pub fn encode_with_limit<M: Message>(
    msg: &M,
    dst: &mut BytesMut,
    max: usize,
) -> Result<(), EncodeError> {
    let len = msg.encoded_len();
    if len > max {
        return Err(EncodeError::TooLarge { len, max });
    }
    dst.reserve(prost::length_delimiter_len(len) + len);
    // BytesMut grows on demand, so prost cannot run out of space here.
    msg.encode_length_delimited(dst)
        .map_err(|_| EncodeError::TooLarge { len, max })
}

/// Encodes `msg` into a fresh buffer, ready to write to the stream.
pub fn encode_to_bytes<M: Message>(msg: &M) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    encode(msg, &mut buf)?;
    Ok(buf.freeze())
}

/// Incremental decoder of a length-delimited control stream.
///
/// Feed it bytes as they are read with [`Decoder::extend`], then call
/// [`Decoder::decode`] (or [`Decoder::next_frame`]) until it returns
/// `Ok(None)`, which means "need more bytes". It buffers at most one partial
/// message (bounded by the size limit) plus whatever was fed in one go.
///
/// ```
/// use ptt_proto::{framing::{self, Decoder}, pb};
/// let msg = pb::ClientMessage { request_id: 7, body: None };
/// let wire = framing::encode_to_bytes(&msg).unwrap();
/// let mut dec = Decoder::new();
/// dec.extend(&wire[..1]); // a partial read
/// assert_eq!(dec.decode::<pb::ClientMessage>().unwrap(), None);
/// dec.extend(&wire[1..]);
/// assert_eq!(dec.decode::<pb::ClientMessage>().unwrap(), Some(msg));
/// ```
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the protocol's limit, [`MAX_MESSAGE_SIZE`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_message_size(MAX_MESSAGE_SIZE)
    }

    /// A decoder with a custom limit on the message body size.
    #[must_use]
    pub fn with_max_message_size(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Number of bytes buffered and not yet returned as a message. Non-zero
    /// at the end of the stream means the peer closed mid-message.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete frame body (without its length prefix), or
    /// `Ok(None)` if more bytes are needed.
    ///
    /// The body is split off the internal buffer without copying.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let Some((len, prefix_len)) = self.peek_length()? else {
            return Ok(None);
        };
        // `len <= max` was checked, so it fits in usize.
        let len = usize::try_from(len).map_err(|_| DecodeError::MalformedLength)?;
        let Some(total) = prefix_len.checked_add(len) else {
            return Err(DecodeError::MalformedLength);
        };
        if self.buf.len() < total {
            // Make room once for the whole message instead of growing per read.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(prefix_len);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Returns the next complete message decoded as `M`, or `Ok(None)` if
    /// more bytes are needed.
    pub fn decode<M: Message + Default>(&mut self) -> Result<Option<M>, DecodeError> {
        match self.next_frame()? {
            Some(frame) => Ok(Some(M::decode(frame)?)),
            None => Ok(None),
        }
    }

    /// Parses the varint length prefix at the front of the buffer without
    /// consuming it: `Some((body_len, prefix_len))`, or `None` if incomplete.
    fn peek_length(&self) -> Result<Option<(u64, usize)>, DecodeError> {
        let mut value: u64 = 0;
        for (i, &byte) in self.buf.iter().take(MAX_VARINT_LEN).enumerate() {
            let bits = u64::from(byte & 0x7f);
            if i == MAX_VARINT_LEN - 1 && byte > 0x01 {
                // The tenth byte may only hold the top bit of a u64.
                return Err(DecodeError::MalformedLength);
            }
            value |= bits << (7 * i);
            if value > self.max as u64 {
                // Reject as early as possible, even before the prefix is
                // complete, so a hostile peer cannot make us wait for more.
                return Err(DecodeError::TooLarge {
                    len: value,
                    max: self.max,
                });
            }
            if byte & 0x80 == 0 {
                return Ok(Some((value, i + 1)));
            }
        }
        if self.buf.len() >= MAX_VARINT_LEN {
            return Err(DecodeError::MalformedLength);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn floor_request() -> pb::ClientMessage {
        pb::ClientMessage {
            request_id: 42,
            body: Some(pb::client_message::Body::FloorRequest(pb::FloorRequest {
                group_id: 7,
                priority: pb::Priority::Normal.into(),
                kind: pb::FloorKind::Normal.into(),
            })),
        }
    }

    #[test]
    fn encodes_known_bytes() {
        let wire = encode_to_bytes(&floor_request()).unwrap();
        // len=10 | field 1 varint 42 | field 13 len 6 { 1:7, 2:1, 3:1 }
        assert_eq!(
            &wire[..],
            &[10, 0x08, 42, 0x6a, 6, 0x08, 7, 0x10, 1, 0x18, 1]
        );
    }

    #[test]
    fn decodes_byte_by_byte_and_back_to_back() {
        let mut wire = BytesMut::new();
        encode(&floor_request(), &mut wire).unwrap();
        encode(&pb::ClientMessage::default(), &mut wire).unwrap();
        encode(&floor_request(), &mut wire).unwrap();
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        for b in wire.iter() {
            dec.extend(&[*b]);
            while let Some(m) = dec.decode::<pb::ClientMessage>().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(
            out,
            vec![
                floor_request(),
                pb::ClientMessage::default(),
                floor_request()
            ]
        );
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn rejects_too_large_prefix_early() {
        let mut dec = Decoder::new();
        // 0x80 0x80 0x04 = 65536 = 64 KiB exactly: allowed, waits for body.
        dec.extend(&[0x80, 0x80, 0x04]);
        assert_eq!(dec.next_frame(), Ok(None));
        let mut dec = Decoder::new();
        // 65537: refused.
        dec.extend(&[0x81, 0x80, 0x04]);
        assert!(matches!(
            dec.next_frame(),
            Err(DecodeError::TooLarge { len: 65537, .. })
        ));
        // A huge incomplete prefix is refused before it is complete.
        let mut dec = Decoder::new();
        dec.extend(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            dec.next_frame(),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_malformed_varint() {
        let mut dec = Decoder::with_max_message_size(usize::MAX);
        dec.extend(&[0x80; 10]);
        assert_eq!(dec.next_frame(), Err(DecodeError::MalformedLength));
        let mut dec = Decoder::with_max_message_size(usize::MAX);
        dec.extend(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert_eq!(dec.next_frame(), Err(DecodeError::MalformedLength));
    }

    #[test]
    fn non_canonical_prefix_is_accepted() {
        let mut dec = Decoder::new();
        dec.extend(&[0x81, 0x80, 0x00, 0x08]);
        assert_eq!(dec.next_frame(), Ok(Some(Bytes::from_static(&[0x08]))));
    }

    #[test]
    fn protobuf_error_keeps_stream_in_sync() {
        let mut dec = Decoder::new();
        // Frame of 1 byte 0xff (invalid tag), then a valid empty message.
        dec.extend(&[1, 0xff, 0]);
        assert!(matches!(
            dec.decode::<pb::ClientMessage>(),
            Err(DecodeError::Protobuf(_))
        ));
        assert_eq!(
            dec.decode::<pb::ClientMessage>(),
            Ok(Some(pb::ClientMessage::default()))
        );
    }

    #[test]
    fn encode_refuses_too_large() {
        let msg = pb::ServerMessage {
            request_id: 1,
            body: Some(pb::server_message::Body::Error(pb::Error {
                reason: pb::ErrorReason::Internal.into(),
                detail: "x".repeat(MAX_MESSAGE_SIZE),
            })),
        };
        let mut buf = BytesMut::new();
        assert!(matches!(
            encode(&msg, &mut buf),
            Err(EncodeError::TooLarge { .. })
        ));
        assert!(buf.is_empty());
    }
}
