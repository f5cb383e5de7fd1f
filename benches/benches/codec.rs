//! Micro benches of the client's voice path, one 20 ms frame per iteration
//! (criterion's elem/s is frames per second; one talker needs 50).
//!
//! - `<backend>_encode_20ms_24kbps_fec`: one frame of speech-like PCM to Opus.
//! - `<backend>_decode_20ms_24kbps_fec`: one packet back to PCM.
//! - `<backend>_conceal_20ms` / `<backend>_fec_recover_20ms`: a lost frame,
//!   by PLC or from the next packet's FEC.
//! - `jitter_push_pop_20ms`: one frame through the jitter buffer in steady
//!   state.
//!
//! Run with `cargo bench -p ptt-benches --bench codec`; add
//! `--features ptt-client/libopus` to bench libopus beside opus-rs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ptt_client::codec::{Backend, CodecConfig, FRAME_SAMPLES, MAX_PACKET_LEN, signal};
use ptt_client::jitter::{JitterBuffer, JitterConfig};

/// Two seconds of speech-like audio: pauses and voiced syllables in the
/// proportions of speech, so the encoder's cost is averaged over both.
fn frames() -> Vec<Vec<i16>> {
    signal::speech_like(2.0, 1)
        .chunks_exact(FRAME_SAMPLES)
        .map(<[i16]>::to_vec)
        .collect()
}

fn name(backend: Backend) -> &'static str {
    match format!("{backend:?}").as_str() {
        "OpusRs" => "opus_rs",
        _ => "libopus",
    }
}

fn codec(c: &mut Criterion) {
    let pcm = frames();
    let config = CodecConfig::default();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    for &backend in Backend::ALL {
        let name = name(backend);
        let mut enc = backend.encoder(config).expect("encoder");
        let mut out = [0u8; MAX_PACKET_LEN];
        let mut i = 0;
        group.bench_function(format!("{name}_encode_20ms_24kbps_fec"), |b| {
            b.iter(|| {
                i = (i + 1) % pcm.len();
                black_box(enc.encode(black_box(&pcm[i]), &mut out).expect("encode"))
            });
        });

        let mut enc = backend.encoder(config).expect("encoder");
        let packets: Vec<Vec<u8>> = pcm
            .iter()
            .map(|f| {
                let n = enc.encode(f, &mut out).expect("encode");
                out[..n].to_vec()
            })
            .collect();
        let mut dec = backend.decoder().expect("decoder");
        let mut pcm_out = [0i16; FRAME_SAMPLES];
        let mut i = 0;
        group.bench_function(format!("{name}_decode_20ms_24kbps_fec"), |b| {
            b.iter(|| {
                i = (i + 1) % packets.len();
                black_box(
                    dec.decode(Some(black_box(&packets[i])), false, &mut pcm_out)
                        .expect("decode"),
                )
            });
        });
        // Conceal one frame in every four so PLC runs from a fresh state
        // rather than fading into silence.
        let mut i = 0;
        group.bench_function(format!("{name}_conceal_20ms"), |b| {
            b.iter(|| {
                i = (i + 1) % packets.len();
                if i % 4 == 0 {
                    black_box(dec.decode(None, false, &mut pcm_out).expect("plc"))
                } else {
                    black_box(
                        dec.decode(Some(&packets[i]), false, &mut pcm_out)
                            .expect("decode"),
                    )
                }
            });
        });
        let mut i = 0;
        group.bench_function(format!("{name}_fec_recover_20ms"), |b| {
            b.iter(|| {
                i = (i + 1) % (packets.len() - 1);
                black_box(
                    dec.decode(Some(&packets[i + 1]), true, &mut pcm_out)
                        .expect("fec"),
                )
            });
        });
    }
    group.finish();
}

fn jitter(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter");
    group.throughput(Throughput::Elements(1));
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let payload = Bytes::from(vec![0x48u8; 60]);
    let t0 = Instant::now();
    let mut now = t0;
    let mut seq = 0u16;
    let mut ts = 0u64;
    // Steady state: the buffer holds its target delay's worth of frames.
    let step = |now: &mut Instant, seq: &mut u16, ts: &mut u64, jb: &mut JitterBuffer| {
        jb.push(*now, *seq, 1, *ts, payload.clone());
        let mut played = 0;
        while let Some(p) = jb.pop(*now) {
            played += 1;
            black_box(p);
        }
        *now += Duration::from_millis(20);
        *seq = seq.wrapping_add(1);
        *ts += 20_000;
        played
    };
    for _ in 0..10 {
        step(&mut now, &mut seq, &mut ts, &mut jb);
    }
    group.bench_function("jitter_push_pop_20ms", |b| {
        b.iter(|| black_box(step(&mut now, &mut seq, &mut ts, &mut jb)));
    });
    group.finish();
}

criterion_group!(benches, codec, jitter);
criterion_main!(benches);
