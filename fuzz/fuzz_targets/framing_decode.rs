//! Feeds arbitrary bytes to the control-stream decoder in arbitrary chunks.
//!
//! The first byte picks the chunk size, so partial reads are exercised; every
//! frame is decoded as a `ClientMessage`. Any message that decodes must
//! re-encode to bytes that decode and re-encode identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptt_proto::{framing, pb};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut dec = framing::Decoder::with_max_message_size(4096);
    for piece in data.chunks(chunk) {
        dec.extend(piece);
        loop {
            match dec.decode::<pb::ClientMessage>() {
                Ok(Some(msg)) => {
                    // Compare bytes: a NaN coordinate is not equal to itself.
                    let wire = framing::encode_to_bytes(&msg).expect("re-encode");
                    let mut again = framing::Decoder::new();
                    again.extend(&wire);
                    let msg2 = again
                        .decode::<pb::ClientMessage>()
                        .unwrap()
                        .expect("whole frame");
                    assert_eq!(framing::encode_to_bytes(&msg2).unwrap(), wire);
                }
                Ok(None) => break,
                Err(framing::DecodeError::Protobuf(_)) => {}
                Err(_) => return,
            }
        }
    }
});
