//! The voice stream fallback (`proto/voice.md` §4): one unidirectional QUIC
//! stream per talk burst, carrying the burst's voice datagrams as records of
//! a 2-byte big-endian length and the datagram itself.
//!
//! Some QUIC stacks and middleboxes carry no DATAGRAM frames; on such a path
//! voice still flows, on streams, with the same header, stamping and
//! validation as datagrams. [`record_prefix`] frames a datagram for writing
//! (the datagram itself follows as its own buffer, so a relay writes one
//! shared frame to many streams without copying it), and [`RecordReader`]
//! splits what was read back into datagrams.
//!
//! ```
//! use ptt_proto::voice_stream::{RecordReader, record_prefix};
//! let datagram = [0x11u8; 40];
//! let mut wire = record_prefix(datagram.len()).unwrap().to_vec();
//! wire.extend_from_slice(&datagram);
//! let mut reader = RecordReader::new();
//! reader.extend(&wire[..3]); // a partial read
//! assert_eq!(reader.next_record().unwrap(), None);
//! reader.extend(&wire[3..]);
//! assert_eq!(reader.next_record().unwrap().unwrap(), &datagram[..]);
//! ```

use bytes::{Buf, Bytes, BytesMut};

use crate::voice::{HEADER_LEN, MAX_DATAGRAM_SIZE};

/// Bytes of a record's length prefix.
pub const PREFIX_LEN: usize = 2;

/// Shortest record: a voice header and at least one byte of Opus.
pub const MIN_RECORD_LEN: usize = HEADER_LEN + 1;

/// Longest record: the largest voice datagram (§3.2).
pub const MAX_RECORD_LEN: usize = MAX_DATAGRAM_SIZE;

/// Application error code of `STOP_SENDING` (and of a reset) on a voice
/// stream whose records break §4: the burst is dropped.
pub const STREAM_ERROR_CODE: u32 = 1;

/// A record length outside [`MIN_RECORD_LEN`]..=[`MAX_RECORD_LEN`]: the
/// stream cannot be trusted further and the receiver stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "voice stream record of {0} bytes (a record holds {MIN_RECORD_LEN} to {MAX_RECORD_LEN} bytes)"
)]
pub struct RecordLengthError(pub usize);

/// The length prefix of a record holding a `len`-byte datagram.
pub fn record_prefix(len: usize) -> Result<[u8; PREFIX_LEN], RecordLengthError> {
    if !(MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&len) {
        return Err(RecordLengthError(len));
    }
    // Fits: MAX_RECORD_LEN < 65536.
    Ok((len as u16).to_be_bytes())
}

/// Splits the bytes of one voice stream into datagrams, however the reads
/// cut them. Holds at most one record and one read.
#[derive(Debug, Default)]
pub struct RecordReader {
    buf: BytesMut,
}

impl RecordReader {
    /// An empty reader, for a new stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned: non-zero at the end of the
    /// stream means it ended mid-record (the partial record is dropped).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete datagram, `Ok(None)` if more bytes are needed, or
    /// the error of a length out of bounds (the stream is then unusable).
    /// The datagram is split off without copying.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordLengthError> {
        let Some(prefix) = self.buf.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if !(MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&len) {
            return Err(RecordLengthError(len));
        }
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(datagram: &[u8]) -> Vec<u8> {
        let mut wire = record_prefix(datagram.len()).unwrap().to_vec();
        wire.extend_from_slice(datagram);
        wire
    }

    #[test]
    fn lengths_outside_the_bounds_are_refused_both_ways() {
        assert_eq!(record_prefix(24), Err(RecordLengthError(24)));
        assert_eq!(record_prefix(1101), Err(RecordLengthError(1101)));
        assert_eq!(record_prefix(25), Ok([0, 25]));
        assert_eq!(record_prefix(1100), Ok([0x04, 0x4c]));
        for bad in [[0u8, 24], [0x04, 0x4d], [0xff, 0xff], [0, 0]] {
            let mut reader = RecordReader::new();
            reader.extend(&bad);
            let len = usize::from(u16::from_be_bytes(bad));
            assert_eq!(reader.next_record(), Err(RecordLengthError(len)));
        }
    }

    #[test]
    fn a_record_cut_short_stays_buffered() {
        let mut reader = RecordReader::new();
        reader.extend(&record(&[7; 30])[..20]);
        assert_eq!(reader.next_record(), Ok(None));
        assert_eq!(reader.buffered(), 20);
    }

    proptest! {
        /// Records come back whole and in order however the stream is cut.
        #[test]
        fn records_survive_any_cut(
            lens in proptest::collection::vec(MIN_RECORD_LEN..=MAX_RECORD_LEN, 1..20),
            cut in 1usize..200,
        ) {
            let datagrams: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, &len)| vec![i as u8; len])
                .collect();
            let wire: Vec<u8> = datagrams.iter().flat_map(|d| record(d)).collect();
            let mut reader = RecordReader::new();
            let mut out = Vec::new();
            for chunk in wire.chunks(cut) {
                reader.extend(chunk);
                while let Some(datagram) = reader.next_record().unwrap() {
                    out.push(datagram.to_vec());
                }
            }
            prop_assert_eq!(out, datagrams);
            prop_assert_eq!(reader.buffered(), 0);
        }
    }
}
