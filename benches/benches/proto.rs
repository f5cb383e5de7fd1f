//! Micro benches of the wire codecs on the relay's paths, one element (one
//! datagram or one control message) per iteration.
//!
//! Hot path per incoming datagram: `voice_parse_20ms_wb` then
//! `voice_stamp_talker`. Control path: `framing_*`. Run with
//! `cargo bench -p ptt-benches --bench proto`.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ptt_proto::{
    framing::{self, Decoder},
    opus, pb,
    voice::{self, Flags, Kind, VoiceDatagram, VoiceHeader},
};

/// A typical 20 ms wideband Opus packet at 24 kbit/s: TOC (config 9, SILK
/// WB 20 ms, mono, code 0) and 59 bytes of frame data.
fn opus_20ms() -> Vec<u8> {
    let mut p = vec![9 << 3];
    p.extend((0..59u8).map(|i| i.wrapping_mul(37)));
    p
}

fn header() -> VoiceHeader {
    VoiceHeader {
        kind: Kind::Voice,
        flags: Flags::default(),
        group_id: 7,
        talker_id: 0,
        burst_id: 42,
        sequence: 1234,
        timestamp_us: 1_700_000_000_000_000,
    }
}

fn datagram() -> Bytes {
    let mut buf = BytesMut::new();
    voice::encode(&header(), &opus_20ms(), &mut buf).expect("valid datagram");
    buf.freeze()
}

fn floor_request() -> pb::ClientMessage {
    pb::ClientMessage {
        request_id: 1017,
        body: Some(pb::client_message::Body::FloorRequest(pb::FloorRequest {
            group_id: 7,
            priority: pb::Priority::Normal.into(),
            kind: pb::FloorKind::Normal.into(),
        })),
    }
}

fn floor_taken() -> pb::ServerMessage {
    pb::ServerMessage {
        request_id: 0,
        body: Some(pb::server_message::Body::FloorTaken(pb::FloorTaken {
            group_id: 7,
            holder_terminal_id: 1001,
            holder_name: "Patrol 3 / motorcycle".into(),
            priority: pb::Priority::Normal.into(),
            burst_id: 42,
            kind: pb::FloorKind::Normal.into(),
        })),
    }
}

fn voice(c: &mut Criterion) {
    let mut g = c.benchmark_group("voice");
    g.throughput(Throughput::Elements(1));
    let dgram = datagram();
    g.bench_function("voice_parse_20ms_wb", |b| {
        b.iter(|| VoiceDatagram::parse(black_box(dgram.clone())).expect("valid"));
    });
    g.bench_function("voice_header_parse", |b| {
        b.iter(|| VoiceHeader::parse(black_box(&dgram)).expect("valid"));
    });
    let mut stampable = BytesMut::from(&dgram[..]);
    g.bench_function("voice_stamp_talker", |b| {
        b.iter(|| voice::stamp(black_box(&mut stampable), black_box(1001), black_box(42)));
    });
    let opus = opus_20ms();
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("voice_encode_20ms_wb", |b| {
        b.iter(|| {
            if out.capacity() - out.len() < voice::MAX_DATAGRAM_SIZE {
                out.clear();
            }
            voice::encode(black_box(&header()), black_box(&opus), &mut out).expect("valid");
        });
    });
    g.finish();
}

fn opus_toc(c: &mut Criterion) {
    let mut g = c.benchmark_group("opus");
    g.throughput(Throughput::Elements(1));
    let code0 = opus_20ms();
    g.bench_function("opus_parse_code0", |b| {
        b.iter(|| opus::parse(black_box(&code0)).expect("valid"));
    });
    // Code 3 VBR, 3 frames of 20 ms with padding: the longest parse path.
    let code3: Vec<u8> = [9 << 3 | 3, 0xc3, 2, 20, 20]
        .into_iter()
        .chain(std::iter::repeat_n(0x55, 62))
        .collect();
    g.bench_function("opus_parse_code3_vbr", |b| {
        b.iter(|| opus::parse(black_box(&code3)).expect("valid"));
    });
    g.finish();
}

fn control(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(1));
    let req = floor_request();
    let taken = floor_taken();
    let mut out = BytesMut::with_capacity(64 * 1024);
    g.bench_function("framing_encode_floor_request", |b| {
        b.iter(|| {
            if out.capacity() - out.len() < 256 {
                out.clear();
            }
            framing::encode(black_box(&req), &mut out).expect("fits");
        });
    });
    g.bench_function("framing_encode_floor_taken", |b| {
        b.iter(|| {
            if out.capacity() - out.len() < 256 {
                out.clear();
            }
            framing::encode(black_box(&taken), &mut out).expect("fits");
        });
    });
    let req_wire = framing::encode_to_bytes(&req).expect("fits");
    let taken_wire = framing::encode_to_bytes(&taken).expect("fits");
    let mut dec = Decoder::new();
    g.bench_function("framing_decode_floor_request", |b| {
        b.iter(|| {
            dec.extend(black_box(&req_wire));
            dec.decode::<pb::ClientMessage>()
                .expect("valid")
                .expect("whole")
        });
    });
    g.bench_function("framing_decode_floor_taken", |b| {
        b.iter(|| {
            dec.extend(black_box(&taken_wire));
            dec.decode::<pb::ServerMessage>()
                .expect("valid")
                .expect("whole")
        });
    });
    g.finish();
}

criterion_group!(benches, voice, opus_toc, control);
criterion_main!(benches);
