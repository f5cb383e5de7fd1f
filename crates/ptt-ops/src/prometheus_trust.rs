//! The families of `/metrics` that say what the relay refused and how far it trusts what
//! terminals tell it: connections turned away before authentication, requests over their
//! rate limits and the sessions cut off for it,
//! bursts that ended without a live frame, the terminals' quality reports as bounded by
//! what the relay sent them, and the relay's own per-group traffic to compare them with.

use std::fmt;
use std::time::Instant;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use ptt_relay_core::group::Groups;
use ptt_relay_core::metrics::Metrics;
use ptt_relay_core::metrics::admission::AdmissionRefusal;
use ptt_relay_core::metrics::limits::RequestFamily;
use ptt_relay_core::metrics::traffic::GroupTrafficFigures;

use crate::encode::{counter, gauge, labelled_counter};

/// Encodes every family of this file from `m`.
pub(crate) fn encode(
    out: &mut DescriptorEncoder<'_>,
    m: &Metrics,
    groups: &Groups,
) -> Result<(), fmt::Error> {
    labelled_counter(
        out,
        "pttd_admission_refused",
        "Connections turned away before or at authentication, by reason.",
        "reason",
        AdmissionRefusal::ALL
            .iter()
            .map(|&reason| (reason.as_str(), m.admission.refused(reason))),
    )?;
    counter(
        out,
        "pttd_auth_verifications",
        "Secrets verified with argon2 by the hashing pool.",
        m.auth_verifications.get(),
    )?;
    counter(
        out,
        "pttd_auth_busy",
        "Logins answered RATE_LIMITED at once: the hashing pool's queue was full or its expected wait too long.",
        m.auth_busy.get(),
    )?;
    counter(
        out,
        "pttd_auth_slowed",
        "Failed logins answered only after auth-failure-delay: the relay-wide failure budget was exceeded.",
        m.auth_slowed.get(),
    )?;
    labelled_counter(
        out,
        "pttd_auth_resumptions",
        "Logins with a resumption credential, by outcome: resumed (no argon2); stale (expired, an older key, or a terminal no longer in the directory); invalid (altered, forged or another terminal's).",
        "outcome",
        [
            ("resumed", m.auth_resumed.get()),
            ("stale", m.auth_resume_stale.get()),
            ("invalid", m.auth_resume_invalid.get()),
        ]
        .into_iter(),
    )?;
    counter(
        out,
        "pttd_admission_retries",
        "QUIC Retry packets sent to make a peer prove its address.",
        m.admission.retries(),
    )?;
    gauge(
        out,
        "pttd_unauthenticated_connections",
        "Connections not yet authenticated holding a place now.",
        None,
        m.admission.unauthenticated.get(),
    )?;
    gauge(
        out,
        "pttd_admission_waiting",
        "Connection attempts waiting for an unauthenticated place now.",
        None,
        m.admission.waiting.get(),
    )?;
    labelled_counter(
        out,
        "pttd_rate_limited",
        "Requests refused with RATE_LIMITED by the per-session limits, by request family.",
        "family",
        RequestFamily::ALL
            .iter()
            .map(|&family| (family.as_str(), m.rate.refused(family))),
    )?;
    labelled_counter(
        out,
        "pttd_sessions_cut_off",
        "Sessions closed for misbehaving, by reason (also counted in pttd_cut_off).",
        "reason",
        [("rate", m.rate.cut_off())].into_iter(),
    )?;
    counter(
        out,
        "pttd_empty_bursts",
        "Bursts that ended before any live voice frame (a grant released at once or revoked unused).",
        m.empty_bursts.get(),
    )?;
    let reports = &m.quality_reports;
    labelled_counter(
        out,
        "pttd_client_quality_reports",
        "Quality reports of terminals, by outcome: accepted; too_frequent (ignored, within 4 s of the session's last); overclaimed (counted, but claiming more frames than the relay sent).",
        "outcome",
        [
            ("accepted", reports.accepted()),
            ("too_frequent", reports.too_frequent()),
            ("overclaimed", reports.overclaimed()),
        ]
        .into_iter(),
    )?;
    counter(
        out,
        "pttd_client_frames_overclaimed",
        "Frames quality reports claimed as received beyond what the relay sent those terminals.",
        reports.frames_overclaimed(),
    )?;
    counter(
        out,
        "pttd_voice_listener_queue_dropped",
        "Voice frames handed to a listener but never sent: datagrams its send queue dropped or held at close (counted when each session ends), and frames a stream listener (voice.md §4) skipped when it fell behind.",
        m.listener_queue_dropped.get(),
    )?;
    group_traffic(out, groups)?;
    mouth_to_ear_p95(out, m)
}

/// A per-group counter family: name, help, and the figure it reads.
type Family = (&'static str, &'static str, fn(&GroupTrafficFigures) -> u64);

/// The relay's own view of each group's voice, beside what the listeners
/// report: groups that have carried voice since start, by id.
fn group_traffic(out: &mut DescriptorEncoder<'_>, groups: &Groups) -> Result<(), fmt::Error> {
    let mut traffic: Vec<(u32, GroupTrafficFigures)> = groups
        .iter()
        .map(|group| (group.id, group.traffic()))
        .filter(|(_, figures)| figures.frames_forwarded > 0)
        .collect();
    traffic.sort_unstable_by_key(|&(id, _)| id);
    let labels: Vec<[(&str, String); 1]> = traffic
        .iter()
        .map(|(group, _)| [("group", group.to_string())])
        .collect();
    let families: [Family; 3] = [
        (
            "pttd_group_voice_frames_forwarded",
            "Voice frames of the group the relay fanned out, each once.",
            |f| f.frames_forwarded,
        ),
        (
            "pttd_group_voice_datagrams_handed",
            "Datagrams handed to the group's listeners' connections (frames x listeners reached).",
            |f| f.datagrams_handed,
        ),
        (
            "pttd_group_voice_datagrams_refused",
            "Datagrams a listener's connection of the group refused.",
            |f| f.datagrams_refused,
        ),
    ];
    for (name, help, value) in families {
        let mut family = out.encode_descriptor(name, help, None, MetricType::Counter)?;
        for ((_, figures), labels) in traffic.iter().zip(&labels) {
            ConstCounter::new(value(figures)).encode(family.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// The listeners' 95th-percentile mouth-to-ear per group, with each terminal's weight
/// capped as for the mean.
fn mouth_to_ear_p95(out: &mut DescriptorEncoder<'_>, m: &Metrics) -> Result<(), fmt::Error> {
    let figures = m.client_quality.all(Instant::now());
    let mut family = out.encode_descriptor(
        "pttd_client_mouth_to_ear_p95",
        "The listeners' reported 95th-percentile mouth-to-ear latency over the last minute, per group (each terminal's weight capped).",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for (group, f) in &figures {
        if let Some(p95) = f.mouth_to_ear_p95 {
            let labels = [("group", group.to_string())];
            ConstGauge::new(p95.as_secs_f64()).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}
