//! Writing one metric family at a time into a scrape: counters, gauges, labelled counter
//! families and latency histograms in seconds, as the Prometheus exposition expects them.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use ptt_relay_core::metrics::{HistogramSnapshot, LATENCY_BOUNDS_US};

/// A counter named `name` (the encoder appends `_total`).
pub(crate) fn counter(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(out.encode_descriptor(name, help, None, metric.metric_type())?)
}

pub(crate) fn gauge(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl EncodeGaugeValue,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(out.encode_descriptor(name, help, unit, metric.metric_type())?)
}

pub(crate) fn labelled_counter<'a>(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) -> Result<(), fmt::Error> {
    let mut family = out.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

/// A latency histogram in seconds (the encoder appends `_seconds` and makes
/// the buckets cumulative).
pub(crate) fn histogram(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    snapshot: &HistogramSnapshot,
) -> Result<(), fmt::Error> {
    let buckets = seconds_buckets(snapshot);
    let mut metric =
        out.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        snapshot.sum_us as f64 / 1e6,
        snapshot.count(),
        &buckets,
        None,
    )
}

/// Per-bucket (not cumulative) counts with their upper bounds in seconds,
/// the open last bucket as `+Inf`: what the encoder turns into `le` series.
fn seconds_buckets(snapshot: &HistogramSnapshot) -> [(f64, u64); LATENCY_BOUNDS_US.len() + 1] {
    std::array::from_fn(|i| {
        let bound = LATENCY_BOUNDS_US
            .get(i)
            .map_or(f64::INFINITY, |&us| us as f64 / 1e6);
        (bound, snapshot.buckets[i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptt_relay_core::metrics::Histogram;

    #[test]
    fn histogram_buckets_are_seconds_ending_in_infinity() {
        let h = Histogram::default();
        h.observe_us(30);
        h.observe_us(30_000_000);
        let buckets = seconds_buckets(&h.snapshot());
        assert_eq!(buckets[0], (25e-6, 0));
        assert_eq!(buckets[1], (50e-6, 1));
        assert_eq!(buckets[LATENCY_BOUNDS_US.len()], (f64::INFINITY, 1));
    }
}
