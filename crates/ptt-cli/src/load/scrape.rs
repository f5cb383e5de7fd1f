//! The relay's own share of the one-way latency, read from its Prometheus
//! histogram `pttd_forward_latency_seconds` (datagram in → handed to every
//! listener's connection). On a 2-core machine the generator's own
//! scheduling dominates the one-way figure; this one is the relay alone.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Percentiles;

/// The histogram family to read.
const FAMILY: &str = "pttd_forward_latency_seconds_bucket";

/// Scrapes `http://{ops}/metrics` and summarises the forward latency, or
/// `None` if the relay did not answer or forwarded nothing.
pub(crate) async fn forward_latency(ops: SocketAddr) -> Option<Percentiles> {
    let text = tokio::time::timeout(Duration::from_secs(3), get_metrics(ops))
        .await
        .ok()??;
    summarise(&cumulative_buckets(&text))
}

async fn get_metrics(ops: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(ops).await.ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {ops}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
}

/// `(upper bound in seconds, cumulative count)` in exposition order; the
/// `+Inf` bucket has an infinite bound.
fn cumulative_buckets(text: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(FAMILY)?;
            let le = rest.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = rest.rsplit(' ').next()?.parse::<f64>().ok()? as u64;
            Some((bound, count))
        })
        .collect()
}

/// Percentiles in ms, interpolated linearly inside a bucket; `max` is the
/// upper bound of the highest bucket in use.
fn summarise(buckets: &[(f64, u64)]) -> Option<Percentiles> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let last_finite = buckets
        .iter()
        .rev()
        .find(|(bound, _)| bound.is_finite())
        .map_or(0.0, |(bound, _)| *bound);
    let quantile = |q: f64| {
        let rank = (q * total as f64).max(1.0);
        let mut lower = (0.0, 0u64);
        for &(bound, count) in buckets {
            if count as f64 >= rank {
                if !bound.is_finite() {
                    return last_finite * 1e3;
                }
                let width = (count - lower.1).max(1) as f64;
                let fraction = (rank - lower.1 as f64) / width;
                return (lower.0 + fraction * (bound - lower.0)) * 1e3;
            }
            lower = (bound, count);
        }
        last_finite * 1e3
    };
    let max =
        buckets
            .iter()
            .find(|(_, count)| *count == total)
            .map_or(last_finite, |(bound, _)| {
                if bound.is_finite() {
                    *bound
                } else {
                    last_finite
                }
            });
    Some(Percentiles {
        count: total,
        p50: quantile(0.50),
        p95: quantile(0.95),
        p99: quantile(0.99),
        max: max * 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_histogram_and_interpolates() {
        let text = "# HELP x\n\
            pttd_forward_latency_seconds_bucket{le=\"0.000025\"} 0\n\
            pttd_forward_latency_seconds_bucket{le=\"0.00005\"} 50\n\
            pttd_forward_latency_seconds_bucket{le=\"0.0001\"} 100\n\
            pttd_forward_latency_seconds_bucket{le=\"+Inf\"} 100\n\
            pttd_forward_latency_seconds_sum 0.004\n";
        let buckets = cumulative_buckets(text);
        assert_eq!(buckets.len(), 4);
        let p = summarise(&buckets).unwrap();
        assert_eq!(p.count, 100);
        assert!((p.p50 - 0.05).abs() < 1e-9, "{}", p.p50); // top of (25, 50] µs
        assert!(p.p99 > 0.05 && p.p99 <= 0.1, "{}", p.p99);
        assert!((p.max - 0.1).abs() < 1e-9);
        assert_eq!(summarise(&cumulative_buckets("")), None);
    }
}
