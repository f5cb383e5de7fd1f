//! Decodes arbitrary bytes as a `ServerMessage` (what a client does for every
//! control message) and checks that a decoded message re-encodes to bytes
//! that decode and re-encode identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptt_proto::{pb, prost::Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = pb::ServerMessage::decode(data) {
        // Compare bytes, not messages: a NaN coordinate is not equal to itself.
        let wire = msg.encode_to_vec();
        let again = pb::ServerMessage::decode(&wire[..]).expect("re-decode");
        assert_eq!(again.encode_to_vec(), wire);
    }
});
