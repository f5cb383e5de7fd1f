//! The soak's output: one table row per sample, then a verdict per
//! resource from the least-squares slope over the second half of the run
//! (after warm-up), and what the call log and the recordings cost per burst.

use super::relay::Probe;

const MIB: f64 = 1024.0 * 1024.0;

/// One sample: the relay's probe and the fleet's counters at that moment.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// What the row is (`idle`, `start`, a time, `end`, `logged out`).
    pub(crate) label: String,
    /// Seconds since the churn started; `None` outside the churn.
    pub(crate) t_s: Option<f64>,
    /// Wall-clock seconds since the relay started (for CPU rates).
    pub(crate) wall_s: f64,
    pub(crate) probe: Probe,
    /// Bursts the fleet was granted so far.
    pub(crate) bursts: u64,
    /// This bench's own CPU seconds so far.
    pub(crate) bench_cpu_s: f64,
}

/// Prints the table's header.
pub(crate) fn header() {
    println!(
        "{:<11} {:>7} {:>5} {:>4} {:>5} {:>4} {:>6} {:>6} {:>7} {:>7} {:>8} {:>7} {:>8} {:>6} {:>10} {:>7} {:>6}",
        "time",
        "RSS MiB",
        "fds",
        "thr",
        "sess",
        "unau",
        "relay%",
        "bench%",
        "bursts",
        "log bur",
        "log rows",
        "rec fil",
        "rec MiB",
        "db MiB",
        "fwd frames",
        "dropped",
        "malf"
    );
}

/// Prints `sample`'s row; CPU % since `previous`.
pub(crate) fn row(sample: &Sample, previous: Option<&Sample>) {
    let p = &sample.probe;
    let pct = |now: f64, before: f64| match previous {
        Some(prev) if sample.wall_s > prev.wall_s => {
            format!(
                "{:.1}",
                100.0 * (now - before) / (sample.wall_s - prev.wall_s)
            )
        }
        _ => "-".to_owned(),
    };
    let (relay_cpu, bench_cpu) =
        previous.map_or((0.0, 0.0), |prev| (prev.probe.cpu_s, prev.bench_cpu_s));
    println!(
        "{:<11} {:>7.1} {:>5} {:>4} {:>5.0} {:>4.0} {:>6} {:>6} {:>7} {:>7} {:>8} {:>7} {:>8.2} {:>6.2} {:>10.0} {:>7.0} {:>6.0}",
        sample.label,
        p.rss_kib as f64 / 1024.0,
        p.fds,
        p.threads,
        p.sessions,
        p.unauthenticated,
        pct(p.cpu_s, relay_cpu),
        pct(sample.bench_cpu_s, bench_cpu),
        sample.bursts,
        p.log.bursts,
        p.log.all,
        p.recording_files,
        p.recording_bytes as f64 / MIB,
        p.db_bytes as f64 / MIB,
        p.forwarded,
        p.dropped,
        p.malformed_control,
    );
}

/// Least-squares slope of `y` over `x`; `None` with fewer than 3 points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// A resource that must stay flat under churn, and how much growth per
/// hour is still noise.
struct Flat {
    name: &'static str,
    unit: &'static str,
    threshold_per_h: f64,
    value: fn(&Sample) -> f64,
}

const FLAT: [Flat; 6] = [
    Flat {
        name: "RSS",
        unit: "MiB",
        threshold_per_h: 4.0,
        value: |s| s.probe.rss_kib as f64 / 1024.0,
    },
    Flat {
        name: "open fds",
        unit: "fds",
        threshold_per_h: 10.0,
        value: |s| s.probe.fds as f64,
    },
    Flat {
        name: "threads",
        unit: "threads",
        threshold_per_h: 4.0,
        value: |s| s.probe.threads as f64,
    },
    Flat {
        name: "sessions",
        unit: "sessions",
        threshold_per_h: 10.0,
        value: |s| s.probe.sessions,
    },
    Flat {
        name: "unauthenticated",
        unit: "conns",
        threshold_per_h: 4.0,
        value: |s| s.probe.unauthenticated,
    },
    Flat {
        name: "call-log queue",
        unit: "records",
        threshold_per_h: 10.0,
        value: |s| s.probe.calllog_queue,
    },
];

/// Relay CPU (% of one core) that may drift per hour under the same load.
const CPU_THRESHOLD_PER_H: f64 = 5.0;

/// Prints one resource's slope, mean and whether it grows.
fn print_slope(name: &str, unit: &str, threshold_per_h: f64, points: &[(f64, f64)]) {
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len().max(1) as f64;
    match slope(points) {
        Some(per_h) => println!(
            "  {name:<16} {per_h:>+10.2} {unit}/h (mean {mean:.1}; threshold {threshold_per_h} {unit}/h): {}",
            if per_h > threshold_per_h {
                "GROWS"
            } else {
                "flat"
            }
        ),
        None => println!("  {name:<16} too few samples for a slope"),
    }
}

/// The relay's CPU % between consecutive samples, at the later one's time.
fn cpu_points(samples: &[&Sample]) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].wall_s - w[0].wall_s;
            let t = w[1].t_s?;
            (dt > 0.0).then(|| {
                (
                    t / 3600.0,
                    100.0 * (w[1].probe.cpu_s - w[0].probe.cpu_s) / dt,
                )
            })
        })
        .collect()
}

/// Prints the verdicts. `samples` are all rows; the churn's are those with
/// a time; `run_s` its length; `cap_bytes` the recordings' cap if any.
pub(crate) fn verdict(samples: &[Sample], run_s: f64, cap_bytes: Option<u64>) {
    let churn: Vec<&Sample> = samples.iter().filter(|s| s.t_s.is_some()).collect();
    let second_half: Vec<&Sample> = churn
        .iter()
        .copied()
        .filter(|s| s.t_s.unwrap_or_default() >= run_s / 2.0)
        .collect();
    println!();
    println!(
        "verdict: least-squares slope over the second half ({} samples from t = {:.0} s), per hour",
        second_half.len(),
        run_s / 2.0
    );
    if run_s < 1200.0 {
        println!("  (a second half under 10 min: these slopes are mostly noise)");
    }
    for flat in &FLAT {
        let points: Vec<(f64, f64)> = second_half
            .iter()
            .filter_map(|s| Some((s.t_s? / 3600.0, (flat.value)(s))))
            .collect();
        print_slope(flat.name, flat.unit, flat.threshold_per_h, &points);
    }
    // CPU is a rate: the points are the intervals ending in the second half.
    let cpu: Vec<(f64, f64)> = cpu_points(&churn)
        .into_iter()
        .filter(|p| p.0 * 3600.0 > run_s / 2.0)
        .collect();
    print_slope("relay CPU", "% of a core", CPU_THRESHOLD_PER_H, &cpu);
    per_burst(&churn, cap_bytes);
}

/// What grows with the bursts: rows, recordings and the database per burst.
fn per_burst(churn: &[&Sample], cap_bytes: Option<u64>) {
    let (Some(first), Some(last)) = (churn.first(), churn.last()) else {
        return;
    };
    let bursts = last.bursts.saturating_sub(first.bursts);
    println!(
        "per burst, start to end of the churn ({bursts} bursts granted; expected to grow with them):"
    );
    if bursts == 0 {
        println!("  no bursts");
        return;
    }
    let per = |a: u64, b: u64| (b as f64 - a as f64) / bursts as f64;
    let (a, b) = (&first.probe, &last.probe);
    let rows = per(a.log.bursts, b.log.bursts);
    println!(
        "  call-log burst rows {rows:.3} per burst granted (expected 1.000): {}",
        if (rows - 1.0).abs() <= 0.02 {
            "ok"
        } else {
            "OFF"
        }
    );
    println!(
        "  call-log rows, all tables {:.2} per burst (sessions {:+}, regroups {:+}, alerts {:+}, acks {:+})",
        per(a.log.all, b.log.all),
        b.log.sessions as i64 - a.log.sessions as i64,
        b.log.regroups as i64 - a.log.regroups as i64,
        b.log.alerts as i64 - a.log.alerts as i64,
        b.log.alert_acks as i64 - a.log.alert_acks as i64,
    );
    println!(
        "  database + WAL    {:.2} KiB per burst",
        per(a.db_bytes, b.db_bytes) / 1024.0
    );
    println!(
        "  recordings        {:.3} files, {:.2} KiB per burst",
        per(a.recording_files, b.recording_files),
        per(a.recording_bytes, b.recording_bytes) / 1024.0
    );
    match cap_bytes {
        Some(cap) => {
            let max = churn
                .iter()
                .map(|s| s.probe.recording_bytes)
                .max()
                .unwrap_or_default();
            let reached = churn
                .iter()
                .find(|s| s.probe.recording_bytes as f64 >= 0.9 * cap as f64)
                .and_then(|s| s.t_s);
            println!(
                "  retention cap {:.1} MiB: max {:.2} MiB seen, {}; {}",
                cap as f64 / MIB,
                max as f64 / MIB,
                reached.map_or_else(
                    || "never within 90 % of it".to_owned(),
                    |t| format!("within 90 % of it from t = {t:.0} s")
                ),
                if max <= cap + cap / 20 {
                    "held"
                } else {
                    "EXCEEDED (> 5 % over)"
                }
            );
        }
        None => println!("  no recording cap configured"),
    }
}
