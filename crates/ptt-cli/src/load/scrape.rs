//! The relay's own share of the one-way latency, read from its Prometheus
//! histograms `pttd_forward_latency_seconds` (datagram in → handed to every
//! listener's connection) and `pttd_wire_latency_seconds` (datagram in →
//! its shard has run those connections, which hand the packets to the
//! kernel). On a 2-core machine the generator's own scheduling dominates
//! the one-way figure; these are the relay alone.

use std::net::SocketAddr;
use std::time::Duration;

use ptt_relay_core::metrics::{HistogramSnapshot, LATENCY_BOUNDS_US};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stats::Percentiles;

/// The forward-latency histogram's buckets.
const FAMILY: &str = "pttd_forward_latency_seconds_bucket";

/// The wire-latency histogram's buckets.
const WIRE_FAMILY: &str = "pttd_wire_latency_seconds_bucket";

/// Terminals still connected (a gauge): the scrape waits for 0, so that
/// every session has ended and counted what its queue dropped.
const CONNECTED: &str = "pttd_terminals_connected";

/// Longest wait for the sessions to end before the scrape.
const SESSIONS_END: Duration = Duration::from_secs(3);

/// The relay's two latency histograms, summarised, and the frames it lost
/// itself; `None` where the relay did not answer or measured nothing.
#[derive(Debug, Default)]
pub(crate) struct RelayLatency {
    /// Datagram in → handed to every listener's connection.
    pub forward: Option<Percentiles>,
    /// Datagram in → the packets handed to the kernel.
    pub wire: Option<Percentiles>,
    /// Frames handed to a listener's connection and never sent (its queue
    /// overflowed, or held them at close): `pttd_voice_listener_queue_dropped_total`.
    pub listener_queue_dropped: Option<u64>,
    /// Frames lost for a whole shard because its inbox was full:
    /// `pttd_voice_shard_handover_dropped_total`.
    pub handover_dropped: Option<u64>,
    /// Datagrams a listener's connection refused: `pttd_voice_send_failed_total`.
    pub send_failed: Option<u64>,
}

/// Waits (a while) until the relay's sessions have ended, then scrapes
/// `http://{ops}/metrics` once: both latencies and the relay's own drops.
pub(crate) async fn relay_latency(ops: SocketAddr) -> RelayLatency {
    let deadline = tokio::time::Instant::now() + SESSIONS_END;
    let text = loop {
        let text = tokio::time::timeout(Duration::from_secs(3), get_metrics(ops))
            .await
            .ok()
            .flatten();
        let ended = text.as_deref().and_then(|t| value(t, CONNECTED)) == Some(0);
        if ended || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(text) = text else {
        return RelayLatency::default();
    };
    RelayLatency {
        forward: snapshot(&text, FAMILY).as_ref().and_then(summarise),
        wire: snapshot(&text, WIRE_FAMILY).as_ref().and_then(summarise),
        listener_queue_dropped: value(&text, "pttd_voice_listener_queue_dropped_total"),
        handover_dropped: value(&text, "pttd_voice_shard_handover_dropped_total"),
        send_failed: value(&text, "pttd_voice_send_failed_total"),
    }
}

/// The value of metric `name` in an exposition, summed over its labels.
fn value(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                return None;
            }
            rest.rsplit(' ')
                .next()?
                .parse::<f64>()
                .ok()
                .map(|n| n as u64)
        })
        .reduce(|a, b| a + b)
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

/// The relay's histogram `family` back from its exposition: the cumulative
/// `le` buckets, in order, are the relay's own [`LATENCY_BOUNDS_US`] plus
/// `+Inf`. `None` if the family is missing or has other buckets.
fn snapshot(text: &str, family: &str) -> Option<HistogramSnapshot> {
    let cumulative: Vec<u64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(family)?;
            rest.rsplit(' ')
                .next()?
                .parse::<f64>()
                .ok()
                .map(|n| n as u64)
        })
        .collect();
    if cumulative.len() != LATENCY_BOUNDS_US.len() + 1 {
        return None;
    }
    let mut snapshot = HistogramSnapshot::default();
    let mut below = 0;
    for (bucket, &count) in snapshot.buckets.iter_mut().zip(&cumulative) {
        *bucket = count.saturating_sub(below);
        below = count.max(below);
    }
    Some(snapshot)
}

/// Percentiles in ms (interpolated inside a bucket, as the dashboard does);
/// `max` is the upper bound of the highest bucket in use.
fn summarise(snapshot: &HistogramSnapshot) -> Option<Percentiles> {
    let ms = |q| snapshot.quantile_us(q).map(|us| us / 1e3);
    let highest = snapshot.buckets.iter().rposition(|&n| n > 0)?;
    let largest = LATENCY_BOUNDS_US[LATENCY_BOUNDS_US.len() - 1];
    let max_us = LATENCY_BOUNDS_US.get(highest).copied().unwrap_or(largest);
    Some(Percentiles {
        count: snapshot.count(),
        p50: ms(0.50)?,
        p95: ms(0.95)?,
        p99: ms(0.99)?,
        max: max_us as f64 / 1e3,
    })
}

#[cfg(test)]
mod tests {
    use crate::load::scrape::*;

    /// An exposition with 50 frames in (25, 50] µs and 50 in (50, 100] µs.
    fn exposition() -> String {
        let mut text = String::from("# HELP x\n");
        for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
            let cumulative = match i {
                0 => 0,
                1 => 50,
                _ => 100,
            };
            let le = *bound as f64 / 1e6;
            text += &format!("{FAMILY}{{le=\"{le}\"}} {cumulative}\n");
        }
        text += &format!("{FAMILY}{{le=\"+Inf\"}} 100\npttd_forward_latency_seconds_sum 0.004\n");
        text
    }

    #[test]
    fn reads_the_histogram_and_interpolates() {
        let p = summarise(&snapshot(&exposition(), FAMILY).unwrap()).unwrap();
        assert_eq!(p.count, 100);
        assert!((p.p50 - 0.05).abs() < 1e-9, "{}", p.p50); // top of (25, 50] µs
        assert!(p.p99 > 0.05 && p.p99 <= 0.1, "{}", p.p99);
        assert!((p.max - 0.1).abs() < 1e-9);
        assert_eq!(snapshot("", FAMILY), None);
        assert_eq!(snapshot(&exposition(), WIRE_FAMILY), None, "another family");
    }

    #[test]
    fn reads_a_metric_by_its_whole_name() {
        let text = "# HELP a\npttd_voice_send_failed_total 7\npttd_voice_send_failed_totalx 9\n\
                    pttd_terminals_connected{role=\"guard\"} 2\npttd_terminals_connected{role=\"patrol\"} 1\n";
        assert_eq!(value(text, "pttd_voice_send_failed_total"), Some(7));
        assert_eq!(value(text, CONNECTED), Some(3), "summed over its labels");
        assert_eq!(
            value(text, "pttd_voice_send_failed"),
            None,
            "a prefix is not the name"
        );
    }
}
