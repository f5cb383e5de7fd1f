//! Cost of recording on the voice hot path: one [`Recorder::offer`] per
//! forwarded frame (ARCHITECTURE §2: recording takes copies through a bounded
//! queue that drops rather than blocks).
//!
//! - `recording_offer_queued`: the frame goes into the queue (a `Bytes`
//!   clone and one `try_send`) while the writer thread drains and writes
//!   files, as in the relay. Each sample gets a queue large enough for all
//!   its iterations, so no offer meets a full queue.
//! - `recording_offer_queue_full`: the queue is full; the frame is dropped
//!   and counted.
//! - `recording_offer_disabled`: `record = false`, the baseline branch.
//!
//! Run with `cargo bench -p ptt-benches --bench recording`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ptt_directory::{Directory, HashParams, hash_secret};
use ptt_proto::voice::{self, Flags, Kind, VoiceHeader};
use ptt_recording::Counters;
use ptt_recording::{Limits, Recorder, Settings};

/// A stamped 20 ms wideband datagram as the fan-out hands it over.
fn frame() -> Bytes {
    let header = VoiceHeader {
        kind: Kind::Voice,
        flags: Flags::default(),
        group_id: 10,
        talker_id: 301,
        burst_id: 7,
        sequence: 0,
        timestamp_us: 0,
    };
    let mut packet = vec![9 << 3];
    packet.extend((0..59u8).map(|i| i.wrapping_mul(37)));
    let mut buf = BytesMut::new();
    voice::encode(&header, &packet, &mut buf).expect("fits");
    buf.freeze()
}

fn directory() -> Arc<Directory> {
    let hash = hash_secret(b"x", HashParams::LIGHT).expect("hash");
    let text = format!(
        "[[terminal]]\nid = 301\nname = \"Guard 301\"\nrole = \"guard\"\nsecret-hash = \"{hash}\"\n\n\
         [[group]]\nid = 10\nname = \"Compound\"\nkind = \"enterprise\"\nmembers = [{{ terminal = 301 }}]\n"
    );
    Arc::new(Directory::from_toml_str(&text, "bench").expect("directory"))
}

fn recorder(dir: &std::path::Path, queue: usize, directory: &Arc<Directory>) -> Recorder {
    let settings = Settings {
        dir: dir.to_owned(),
        queue,
        limits: Limits::default(),
    };
    Recorder::start(settings, directory.clone(), Arc::new(Counters::default())).expect("recorder")
}

fn offer(c: &mut Criterion) {
    let directory = directory();
    let scratch = tempfile::tempdir().expect("tempdir");
    let frame = frame();
    let mut group = c.benchmark_group("recording");
    group.throughput(Throughput::Elements(1));

    group.bench_function("recording_offer_queued", |b| {
        b.iter_custom(|iters| {
            // A fresh recorder per sample, with room for every offer.
            let recorder = recorder(scratch.path(), iters as usize, &directory);
            let mut seq = 0u16;
            let start = Instant::now();
            for _ in 0..iters {
                seq = seq.wrapping_add(1);
                black_box(recorder.offer(10, 7, 301, seq, black_box(&frame)));
            }
            let took = start.elapsed();
            recorder.close();
            took
        });
    });

    // One slot, drained by the writer every 20 ms: nearly every offer finds
    // it full.
    let full = recorder(scratch.path(), 1, &directory);
    group.bench_function("recording_offer_queue_full", |b| {
        b.iter(|| black_box(full.offer(10, 8, 301, 0, black_box(&frame))));
    });
    full.close();

    let disabled = Recorder::disabled();
    group.bench_function("recording_offer_disabled", |b| {
        b.iter(|| black_box(disabled.offer(10, 7, 301, 0, black_box(&frame))));
    });
    group.finish();
}

criterion_group!(benches, offer);
criterion_main!(benches);
