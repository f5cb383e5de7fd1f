//! Feeds arbitrary bytes to the voice stream record reader (voice.md §4) in
//! arbitrary chunks, the way a stream is read.
//!
//! The first byte picks the chunk size. Every record returned must be within
//! the protocol's bounds and parse or fail as a voice datagram without
//! panicking; a length error ends the stream, as it does in the relay.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ptt_proto::voice::VoiceDatagram;
use ptt_proto::voice_stream::{MAX_RECORD_LEN, MIN_RECORD_LEN, RecordReader};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut reader = RecordReader::new();
    for piece in data.chunks(chunk) {
        reader.extend(piece);
        loop {
            match reader.next_record() {
                Ok(Some(record)) => {
                    assert!((MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&record.len()));
                    let _ = VoiceDatagram::parse(Bytes::clone(&record));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
