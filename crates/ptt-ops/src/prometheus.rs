//! `GET /metrics`: the relay's counters in the Prometheus text format (or
//! OpenMetrics, when the scraper asks for it).
//!
//! Nothing is counted here. The hot path keeps counting into its own relaxed
//! atomics and lock-free histograms ([`ptt_relay_core::metrics`]); a scrape builds a
//! throw-away registry holding one [`Collector`] that reads those at scrape
//! time. So a scrape takes no lock the voice path takes (the group gates are
//! atomics, the session map is never touched by the fan-out, the client
//! quality figures sit behind a mutex of the control path only) and a slow
//! scraper costs the terminals nothing.
//!
//! The names below are a contract: dashboards and alert rules are written
//! against them (`deploy/`). Units follow Prometheus conventions: seconds,
//! ratios, `_total` for counters.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::encode::{counter, gauge, histogram, labelled_counter};
use crate::state::OpsState;
use ptt_directory::{Role, TerminalId};
use ptt_relay_core::metrics::{DenialReason, DropReason};

/// Content type of the Prometheus text exposition format 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Content type of OpenMetrics text 1.0.0.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every terminal role, so each `pttd_terminals_connected{role}` series
/// exists (at 0) from the first scrape on.
const ROLES: [Role; 6] = [
    Role::Dispatcher,
    Role::Police,
    Role::Patrol,
    Role::Guard,
    Role::Volunteer,
    Role::Other,
];

pub(super) fn routes() -> Router<Arc<OpsState>> {
    Router::new().route("/metrics", get(metrics))
}

/// Which text format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Prometheus text 0.0.4, what every scraper understands.
    Prometheus,
    /// OpenMetrics text, for scrapers that ask for it in `Accept`.
    OpenMetrics,
}

async fn metrics(State(shared): State<Arc<OpsState>>, headers: HeaderMap) -> Response {
    let format = if headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
    {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    match render(&shared, format) {
        Ok(text) => {
            let content_type = match format {
                Format::Prometheus => PROMETHEUS_TEXT,
                Format::OpenMetrics => OPENMETRICS_TEXT,
            };
            ([(header::CONTENT_TYPE, content_type)], text).into_response()
        }
        Err(fmt::Error) => {
            tracing::error!("encoding /metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

/// The whole exposition, read from the relay's counters now.
fn render(shared: &Arc<OpsState>, format: Format) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RelayCollector(shared.clone())));
    let mut text = String::with_capacity(16 * 1024);
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
    }
    Ok(text)
}

/// Reads the relay's state at scrape time.
#[derive(Debug)]
struct RelayCollector(Arc<OpsState>);

impl Collector for RelayCollector {
    fn encode(&self, mut out: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let shared = &*self.0;
        let m = &*shared.relay.metrics;
        let out = &mut out;

        info_gauge(out)?;
        terminals_connected(out, shared)?;
        groups(out, shared)?;

        counter(
            out,
            "pttd_floor_grants",
            "Floor grants (new bursts and emergency upgrades).",
            m.floor_grants.get(),
        )?;
        counter(
            out,
            "pttd_floor_queued",
            "Floor requests put in a group's queue.",
            m.floor_queued.get(),
        )?;
        labelled_counter(
            out,
            "pttd_floor_denials",
            "Floor requests refused, by the reason the terminal was given.",
            "reason",
            DenialReason::ALL
                .iter()
                .map(|&r| (r.as_str(), m.denials(r))),
        )?;
        counter(
            out,
            "pttd_floor_revokes",
            "Floors revoked from their holder, for any reason (pre-emptions included).",
            m.floor_revokes.get(),
        )?;
        counter(
            out,
            "pttd_floor_preemptions",
            "Floors taken from their holder by a higher-priority request.",
            m.floor_preemptions.get(),
        )?;

        counter(
            out,
            "pttd_voice_datagrams_received",
            "Voice datagrams received from terminals.",
            m.datagrams_in.get(),
        )?;
        counter(
            out,
            "pttd_voice_keepalives_received",
            "Keep-alive and probe datagrams (kind 1) received: counted, never forwarded.",
            m.keepalives_in.get(),
        )?;
        counter(
            out,
            "pttd_voice_datagrams_forwarded",
            "Voice datagrams handed to a listener's connection.",
            m.forwarded.get(),
        )?;
        labelled_counter(
            out,
            "pttd_voice_datagrams_dropped",
            "Voice datagrams not forwarded, by reason.",
            "reason",
            DropReason::ALL.iter().map(|&r| (r.as_str(), m.dropped(r))),
        )?;
        counter(
            out,
            "pttd_voice_send_failed",
            "Datagrams a listener's connection refused (closed, or no datagram support).",
            m.send_failed.get(),
        )?;
        counter(
            out,
            "pttd_voice_shard_handovers",
            "Voice frames the talker's shard handed to another shard with listeners of the group, one per frame and shard.",
            m.shard_handovers.get(),
        )?;
        counter(
            out,
            "pttd_voice_shard_handover_dropped",
            "Voice frames lost for a whole shard's listeners because that shard's inbox was full.",
            m.shard_handover_dropped.get(),
        )?;
        counter(
            out,
            "pttd_cluster_voice_out",
            "Talkers' frames published to the other relays of the cluster, one per frame however many relays listen.",
            m.cluster_voice_out.get(),
        )?;
        counter(
            out,
            "pttd_cluster_voice_dropped",
            "Talkers' frames not published to the cluster: the queue to NATS was full, NATS was away, or it refused.",
            m.cluster_voice_dropped.get(),
        )?;
        counter(
            out,
            "pttd_cluster_voice_in",
            "Frames of other relays' talkers fanned out to this relay's listeners.",
            m.cluster_voice_in.get(),
        )?;
        counter(
            out,
            "pttd_cluster_voice_unreadable",
            "Messages on a group's voice subject that were not its voice.",
            m.cluster_voice_unreadable.get(),
        )?;
        counter(
            out,
            "pttd_cluster_calllog_out",
            "This relay's call-log records stored by the cluster's stream, for every relay's call log.",
            m.cluster_calllog_out.get(),
        )?;
        counter(
            out,
            "pttd_cluster_calllog_dropped",
            "This relay's call-log records never shared because the queue to NATS was full; they are in this relay's call log only.",
            m.cluster_calllog_dropped.get(),
        )?;
        counter(
            out,
            "pttd_cluster_calllog_in",
            "Other relays' call-log records stored in this relay's call log.",
            m.cluster_calllog_in.get(),
        )?;

        histogram(
            out,
            "pttd_forward_latency",
            "Voice datagram received to handed to every recipient's connection on the talker's shard and posted to the other shards, one observation per frame: the relay's own share of mouth-to-ear up to quinn.",
            &m.forward_latency.snapshot(),
        )?;
        histogram(
            out,
            "pttd_wire_latency",
            "Voice datagram received to its shard having run every recipient's connection, which hands the packet to the kernel (one frame at a time per shard): the relay's whole share of one-way.",
            &m.wire_latency.snapshot(),
        )?;
        histogram(
            out,
            "pttd_floor_access",
            "Floor request received by the group to granted, queue wait included.",
            &m.access_time.snapshot(),
        )?;
        client_quality(out, shared)?;
        crate::prometheus_trust::encode(out, m, &shared.relay.groups)?;

        let log = shared.relay.log.calllog().stats();
        gauge(
            out,
            "pttd_calllog_queue_depth",
            "Call log records queued and not yet committed.",
            None,
            log.queued.saturating_sub(log.written + log.failed),
        )?;
        counter(
            out,
            "pttd_calllog_dropped",
            "Call log records dropped because the log queue was full.",
            m.log_dropped.get(),
        )?;

        counter(
            out,
            "pttd_recordings_written",
            "Burst recordings (Ogg Opus files) completed.",
            m.recording.written(),
        )?;
        counter(
            out,
            "pttd_recording_frames_dropped",
            "Voice frames not recorded because the recorder's queue was full.",
            m.recording.frames_dropped(),
        )?;
        counter(
            out,
            "pttd_recording_errors",
            "Recordings that failed to write.",
            m.recording.errors(),
        )?;

        counter(
            out,
            "pttd_sessions_opened",
            "Terminal sessions authenticated since start.",
            m.sessions_opened.get(),
        )?;
        counter(
            out,
            "pttd_auth_failures",
            "Authentications that failed (unknown terminal or wrong secret).",
            m.auth_failures.get(),
        )?;
        counter(
            out,
            "pttd_auth_disabled",
            "Logins of a terminal an administrator disabled (right secret): refused.",
            m.auth_disabled.get(),
        )?;
        counter(
            out,
            "pttd_auth_rate_limited",
            "Authentications refused unchecked: the source failed too often.",
            m.auth_rate_limited.get(),
        )?;
        counter(
            out,
            "pttd_control_malformed",
            "Control messages that could not be decoded.",
            m.malformed_control.get(),
        )?;
        counter(
            out,
            "pttd_cut_off",
            "Terminals disconnected for misbehaving or being too slow.",
            m.cut_off.get(),
        )?;
        counter(
            out,
            "pttd_alerts_sent",
            "Dispatcher alerts logged and delivered.",
            m.alerts_sent.get(),
        )?;
        shared.counters.encode(out)?;
        Ok(())
    }
}

fn info_gauge(out: &mut DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
    let mut family = out.encode_descriptor(
        "pttd_build_info",
        "The running pttd's version; always 1.",
        None,
        MetricType::Gauge,
    )?;
    let labels = [("version", env!("CARGO_PKG_VERSION"))];
    ConstGauge::new(1i64).encode(family.encode_family(&labels)?)
}

fn terminals_connected(
    out: &mut DescriptorEncoder<'_>,
    shared: &OpsState,
) -> Result<(), fmt::Error> {
    let mut by_role = [0u64; ROLES.len()];
    for terminal in shared.relay.online.terminals() {
        let role = shared
            .relay
            .directory
            .terminal(TerminalId(terminal))
            .map_or(Role::Other, |t| t.role);
        if let Some(i) = ROLES.iter().position(|&r| r == role) {
            by_role[i] += 1;
        }
    }
    let mut family = out.encode_descriptor(
        "pttd_terminals_connected",
        "Terminals with an authenticated session now, by role.",
        None,
        MetricType::Gauge,
    )?;
    for (role, n) in ROLES.iter().zip(by_role) {
        ConstGauge::new(n).encode(family.encode_family(&[("role", role_label(*role))])?)?;
    }
    Ok(())
}

fn groups(out: &mut DescriptorEncoder<'_>, shared: &OpsState) -> Result<(), fmt::Error> {
    let (mut configured, mut active, mut emergencies) = (0u64, 0u64, 0u64);
    for group in shared.relay.directory.groups() {
        configured += 1;
        if let Some(group) = shared.relay.group(group.id.0) {
            active += u64::from(group.holder().is_some());
            emergencies += u64::from(group.emergency_declarer().is_some());
        }
    }
    gauge(
        out,
        "pttd_groups",
        "Talkgroups configured.",
        None,
        configured,
    )?;
    gauge(
        out,
        "pttd_groups_active",
        "Talkgroups whose floor is taken now.",
        None,
        active,
    )?;
    gauge(
        out,
        "pttd_emergencies_open",
        "Talkgroups in emergency now (declared, not yet cleared).",
        None,
        emergencies,
    )
}

fn client_quality(out: &mut DescriptorEncoder<'_>, shared: &OpsState) -> Result<(), fmt::Error> {
    let figures = shared.relay.metrics.client_quality.all(Instant::now());
    let labels: Vec<[(&str, String); 1]> = figures
        .iter()
        .map(|(group, _)| [("group", group.to_string())])
        .collect();
    let mut family = out.encode_descriptor(
        "pttd_client_mouth_to_ear",
        "Mouth-to-ear latency the listeners report, frame-weighted mean over the last minute, per group.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for ((_, f), labels) in figures.iter().zip(&labels) {
        if let Some(latency) = f.mouth_to_ear {
            ConstGauge::new(latency.as_secs_f64()).encode(family.encode_family(labels)?)?;
        }
    }
    let mut family = out.encode_descriptor(
        "pttd_client_jitter",
        "Interarrival jitter the listeners report, frame-weighted mean over the last minute, per group.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for ((_, f), labels) in figures.iter().zip(&labels) {
        if let Some(jitter) = f.jitter {
            ConstGauge::new(jitter.as_secs_f64()).encode(family.encode_family(labels)?)?;
        }
    }
    let mut family = out.encode_descriptor(
        "pttd_client_loss_ratio",
        "Frames the listeners never received / frames sent to them, over the last minute, per group.",
        None,
        MetricType::Gauge,
    )?;
    for ((_, f), labels) in figures.iter().zip(&labels) {
        if let Some(loss) = f.loss_ratio {
            ConstGauge::new(loss).encode(family.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// The label value of a role (as in the directory file).
fn role_label(role: Role) -> &'static str {
    match role {
        Role::Dispatcher => "dispatcher",
        Role::Police => "police",
        Role::Patrol => "patrol",
        Role::Guard => "guard",
        Role::Volunteer => "volunteer",
        Role::Other => "other",
    }
}
