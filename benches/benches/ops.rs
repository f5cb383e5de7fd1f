//! What monitoring costs: the forward-latency observation the hot path pays
//! per datagram, and one Prometheus scrape of a real relay serving the demo
//! district (59 groups) over loopback HTTP.
//!
//! Run with `cargo bench -p ptt-benches --bench ops`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ptt_proto::pb;
use ptt_relay::Relay;
use ptt_relay::config::Config;
use ptt_relay_core::metrics::Histogram;

fn histogram_observation(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_latency");
    group.throughput(Throughput::Elements(1));
    let histogram = Histogram::default();
    group.bench_function("observe", |b| {
        let latency = Duration::from_micros(37);
        b.iter(|| histogram.observe(black_box(latency)));
    });
    // The clock reads alone, to tell them from the observation.
    group.bench_function("instant_pair", |b| {
        b.iter(|| {
            let started = Instant::now();
            black_box(&started);
            black_box(started.elapsed())
        });
    });
    // What `fanout::forward` adds per datagram: one clock read at the start,
    // one at the end, and the observation.
    group.bench_function("instant_pair_and_observe", |b| {
        b.iter(|| {
            let started = Instant::now();
            black_box(&started);
            histogram.observe(started.elapsed());
        });
    });
    group.finish();
}

fn scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let data = tempfile::tempdir().expect("data dir");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = Config {
        data_dir: data.path().to_owned(),
        listen: loopback,
        ops_listen: loopback,
        console_listen: loopback,
        record: false,
        ..Config::default()
    };
    let relay = runtime.block_on(Relay::load(config)).expect("demo relay");
    let url = format!("http://{}/metrics", relay.ops_addr());
    let metrics = relay.metrics();
    let stop = relay.shutdown_token();
    let task = runtime.spawn(relay.run());

    // Every group has client figures and both histograms have data, so the
    // scrape writes every series it can.
    let now = Instant::now();
    let demo = ptt_directory::Directory::demo().expect("demo district");
    for group in demo.groups() {
        metrics.client_quality.record(
            &pb::GroupQuality {
                group_id: group.id.0,
                frames_received: 240,
                frames_lost: 10,
                jitter_us: 2_000,
                latency_mean_us: 60_000,
                ..Default::default()
            },
            now,
        );
    }
    for us in [20, 40, 80, 300, 2_000] {
        metrics.forward_latency.observe_us(us);
        metrics.access_time.observe_us(us * 100);
    }

    let http = reqwest::Client::new();
    let body = runtime
        .block_on(async { http.get(&url).send().await?.text().await })
        .expect("scrape");
    let groups = body
        .lines()
        .find_map(|l| l.strip_prefix("pttd_groups "))
        .unwrap_or("?");
    println!(
        "scrape: {} bytes, {} lines, pttd_groups {groups}",
        body.len(),
        body.lines().count()
    );

    let mut group = c.benchmark_group("ops");
    group.throughput(Throughput::Elements(1));
    group.bench_function("scrape_metrics_demo_district", |b| {
        b.iter(|| {
            runtime
                .block_on(async { http.get(&url).send().await?.text().await })
                .expect("scrape")
        });
    });
    group.finish();

    stop.cancel();
    let _ = runtime.block_on(task);
}

criterion_group!(benches, histogram_observation, scrape);
criterion_main!(benches);
