//! Micro bench of relay patrol's decision: one `PatrolTracker::step` (a lead's position
//! against every premises zone of the demo district, with hysteresis) per location report.
//! Zone logic runs on the control path; this is its cost per report.
//!
//! Run with `cargo bench -p ptt-benches --bench zones`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ptt_directory::{Directory, GeoPoint, PatrolRule, TerminalId};
use ptt_relay_core::dispatch::patrol::{PatrolTracker, premises_of};

/// 1,000 positions on a line across the district (about 4 km west to east).
fn track() -> Vec<GeoPoint> {
    (0..1_000)
        .map(|i| GeoPoint {
            lat: 30.25,
            lon: 120.13 + f64::from(i) * 0.000_04,
        })
        .collect()
}

const RULE: PatrolRule = PatrolRule {
    lead: TerminalId(201),
    approach_m: 60.0,
    hysteresis_m: 30.0,
};

fn zones(c: &mut Criterion) {
    let premises = premises_of(&Directory::demo().expect("demo directory"));
    let track = track();
    let mut tracker = PatrolTracker::default();
    let mut changes = 0usize;
    let start = Instant::now();
    let mut steps = 0u64;
    while start.elapsed() < Duration::from_millis(300) {
        for &at in &track {
            let step = tracker.step(&premises, &RULE, at);
            changes += step.entered.len() + step.left.len();
        }
        steps += track.len() as u64;
    }
    let ns = start.elapsed().as_nanos() as f64 / steps as f64;
    println!(
        "patrol step against {} premises: {ns:.0} ns per location report ({changes} changes over {steps} reports)",
        premises.len()
    );
    let mut group = c.benchmark_group("zones");
    group.throughput(Throughput::Elements(track.len() as u64));
    group.bench_function("patrol_step_1000_reports", |b| {
        let mut tracker = PatrolTracker::default();
        b.iter(|| {
            for &at in &track {
                black_box(tracker.step(&premises, &RULE, black_box(at)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, zones);
criterion_main!(benches);
