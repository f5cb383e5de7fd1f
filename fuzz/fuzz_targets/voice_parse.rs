//! Parses arbitrary bytes as a voice datagram; a datagram that parses must
//! re-encode to the same bytes (for voice) and survive a talker stamp.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ptt_proto::voice;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = voice::VoiceDatagram::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    if d.header.kind == voice::Kind::Voice {
        let mut out = BytesMut::new();
        voice::encode(&d.header, &d.payload, &mut out).expect("re-encode");
        assert_eq!(&out[..], data);
        voice::stamp(&mut out, 7, 9).expect("stamp");
        let s = voice::VoiceDatagram::parse(out.freeze()).expect("stamped parses");
        assert_eq!((s.header.talker_id, s.header.burst_id), (7, 9));
        assert_eq!(s.payload, d.payload);
    }
});
