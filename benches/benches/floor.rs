//! Micro benches of floor control, one group per workload; throughput is in
//! decisions (one `handle_*` call with its events drained), so criterion's
//! elem/s is decisions per second. Each bench also prints ns per decision
//! from a plain timed loop.
//!
//! Run with `cargo bench -p ptt-benches --bench floor`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ptt_benches::floor::{FloorWorkload, Workload};

/// Times iterations for about `budget`; returns ns per decision and events
/// per iteration.
fn ns_per_decision(workload: Workload, budget: Duration) -> (f64, usize) {
    let mut w = FloorWorkload::new(workload);
    let mut events = 0;
    for _ in 0..1_000 {
        events = black_box(w.run());
    }
    let start = Instant::now();
    let mut iterations: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..100 {
            black_box(w.run());
        }
        iterations += 100;
    }
    let elapsed = start.elapsed();
    let ns = elapsed.as_nanos() as f64 / (iterations * workload.decisions()) as f64;
    (ns, events)
}

fn floor(c: &mut Criterion) {
    for workload in Workload::ALL {
        let (ns, events) = ns_per_decision(workload, Duration::from_millis(300));
        println!(
            "{}: {:.1} ns/decision ({} decisions, {} events drained per iteration)",
            workload.name(),
            ns,
            workload.decisions(),
            events,
        );
        let mut group = c.benchmark_group(workload.name());
        group.throughput(Throughput::Elements(workload.decisions()));
        let mut w = FloorWorkload::new(workload);
        group.bench_function("iteration", |b| b.iter(|| black_box(w.run())));
        group.finish();
    }
}

criterion_group!(benches, floor);
criterion_main!(benches);
