//! The zone logic and private calls in the history API: the directory's zones, where
//! terminals last were, who zone logic added to which group and why, the patrols'
//! state, and from the call log every regrouping and private call.
//!
//! Live parts (dynamic members, patrols, positions, calls up) come from the relay's
//! memory: the roster's grants, the dispatch state, the private-call pool, each behind a
//! short lock the voice path never takes. History comes from the call log on the blocking
//! pool, like the rest of the API.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::call_log::read;
use super::named::Named;
use super::params::{ApiError, Params, QueryPairs, group_param};
use crate::state::OpsState;
use ptt_calllog::{AdminAction, AdminActionRecord, PrivateCallRow, RegroupRow, Row, UnixMs};
use ptt_directory::{Group, GroupId, Shape, ZoneKind};
use ptt_relay_core::dispatch::Fix;
use ptt_relay_core::dispatch::zone_name;

pub(super) fn routes() -> Router<Arc<OpsState>> {
    Router::new()
        .route("/api/v1/zones", get(zones))
        .route("/api/v1/regroups", get(regroups))
        .route("/api/v1/private-calls", get(private_calls))
}

/// A member zone logic added to a group, with the premises that brought it in.
#[derive(Debug, Serialize)]
pub(super) struct DynamicMember {
    terminal: u32,
    name: String,
    /// `zone-entered` (a passing patrol) or `backup` (an emergency nearby).
    reason: &'static str,
    zone: u32,
    zone_name: String,
}

/// The members zone logic added to `group` now, by terminal id.
pub(super) fn dynamic_members(shared: &OpsState, group: GroupId) -> Vec<DynamicMember> {
    shared
        .relay
        .roster
        .dynamic_members(group)
        .into_iter()
        .map(|(terminal, grant)| DynamicMember {
            terminal: terminal.0,
            name: shared.relay.terminal_name(terminal.0),
            reason: grant.reason.as_str(),
            zone: grant.zone.0,
            zone_name: zone_name(&shared.relay.dispatch, grant.zone),
        })
        .collect()
}

/// A relay patrol's rule and where it is now.
#[derive(Debug, Serialize)]
pub(super) struct Patrol {
    lead: u32,
    lead_name: String,
    approach_m: f64,
    hysteresis_m: f64,
    /// The premises zones whose guards the patrol has picked up now.
    near: Vec<u32>,
    /// The lead's last reported position; `None` before its first report.
    lead_location: Option<Location>,
}

/// The patrol state of `group`, `None` unless it is a patrol group.
pub(super) fn patrol(shared: &OpsState, group: &Group) -> Option<Patrol> {
    let rule = group.patrol?;
    Some(Patrol {
        lead: rule.lead.0,
        lead_name: shared.relay.terminal_name(rule.lead.0),
        approach_m: rule.approach_m,
        hysteresis_m: rule.hysteresis_m,
        near: shared
            .relay
            .dispatch
            .patrol_near(group.id)
            .into_iter()
            .map(|zone| zone.0)
            .collect(),
        lead_location: shared
            .relay
            .dispatch
            .location(rule.lead.0)
            .map(Location::from),
    })
}

/// A terminal's last reported position as the relay received it.
#[derive(Debug, Serialize)]
pub(super) struct Location {
    lat: f64,
    lon: f64,
    /// Horizontal accuracy radius, metres; `None` when the terminal did not know it.
    accuracy_m: Option<f32>,
    /// When the relay received the report (unix ms, the relay's clock).
    received_at_ms: UnixMs,
}

impl From<Fix> for Location {
    fn from(fix: Fix) -> Self {
        let accuracy = fix.report.accuracy_m;
        Self {
            lat: fix.at.lat,
            lon: fix.at.lon,
            accuracy_m: (accuracy > 0.0).then_some(accuracy),
            received_at_ms: fix.received_at_ms,
        }
    }
}

/// The last position `terminal` reported, if any.
pub(super) fn location(shared: &OpsState, terminal: u32) -> Option<Location> {
    shared.relay.dispatch.location(terminal).map(Location::from)
}

#[derive(Debug, Serialize)]
struct Zones {
    zones: Vec<ZoneView>,
}

#[derive(Debug, Serialize)]
struct ZoneView {
    id: u32,
    name: String,
    kind: ZoneKind,
    neighbours: Vec<u32>,
    /// `None` for a zone known by name only.
    shape: Option<ShapeView>,
}

/// A zone's outline: `{"circle": {"lat", "lon", "radius_m"}}` or
/// `{"polygon": [[lat, lon], …]}`, corners in order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum ShapeView {
    Circle { lat: f64, lon: f64, radius_m: f64 },
    Polygon(Vec<[f64; 2]>),
}

impl From<&Shape> for ShapeView {
    fn from(shape: &Shape) -> Self {
        match shape {
            Shape::Circle { centre, radius_m } => ShapeView::Circle {
                lat: centre.lat,
                lon: centre.lon,
                radius_m: *radius_m,
            },
            Shape::Polygon(corners) => {
                ShapeView::Polygon(corners.iter().map(|c| [c.lat, c.lon]).collect())
            }
        }
    }
}

/// `GET /api/v1/zones`: the directory's zones with their outlines.
async fn zones(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<Zones>, ApiError> {
    Params::new(query, &[])?;
    let zones = shared
        .relay
        .directory
        .zones()
        .iter()
        .map(|zone| ZoneView {
            id: zone.id.0,
            name: zone.name.clone(),
            kind: zone.kind,
            neighbours: zone.neighbours.iter().map(|z| z.0).collect(),
            shape: zone.shape.as_ref().map(ShapeView::from),
        })
        .collect();
    Ok(Json(Zones { zones }))
}

#[derive(Debug, Serialize)]
struct Regroups {
    regroups: Vec<RegroupView>,
}

#[derive(Debug, Serialize)]
struct RegroupView {
    /// The row's id in its table: `regroups`, or `admin_actions` for reason `admin`.
    id: i64,
    group: Named,
    terminal: Named,
    /// Added to the group (or its rights there changed: `admin`), or removed.
    added: bool,
    /// `zone-entered`, `zone-left`, `backup`, `backup-cleared` (zone logic) or `admin`
    /// (the admin API).
    reason: &'static str,
    /// The premises zone behind a zone-logic change; id 0 for an admin one.
    zone: Named,
    /// The operator of an admin change (its `by`); absent for zone logic.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    at_ms: UnixMs,
}

impl RegroupView {
    fn new(shared: &OpsState, row: RegroupRow) -> Self {
        let r = row.record;
        Self {
            id: row.id,
            group: Named::group(shared, r.group.0),
            terminal: Named::terminal(shared, r.terminal.0),
            added: r.added,
            reason: r.reason.as_str(),
            zone: Named {
                id: r.zone.0,
                name: zone_name(&shared.relay.dispatch, r.zone),
            },
            by: None,
            at_ms: r.at_ms,
        }
    }

    /// An admin API membership change; `None` for other admin actions.
    fn of_admin(shared: &OpsState, row: Row<AdminActionRecord>) -> Option<Self> {
        let r = row.record;
        let (group, terminal, added) = match r.action {
            AdminAction::SetMember {
                group, terminal, ..
            } => (group, terminal, true),
            AdminAction::RemoveMember { group, terminal } => (group, terminal, false),
            _ => return None,
        };
        Some(Self {
            id: row.id,
            group: Named::group(shared, group.0),
            terminal: Named::terminal(shared, terminal.0),
            added,
            reason: "admin",
            zone: Named {
                id: 0,
                name: String::new(),
            },
            by: Some(r.by),
            at_ms: r.at_ms,
        })
    }
}

/// `GET /api/v1/regroups?group=&from=&to=&limit=`: membership changes, zone logic's
/// and the admin API's together, newest first.
async fn regroups(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<Regroups>, ApiError> {
    let params = Params::new(query, &["group", "from", "to", "limit"])?;
    let group = group_param(&shared, &params)?;
    let range = params.range()?;
    let (zone_logic, admin) = read(&shared, move |log| {
        let group = group.map(GroupId);
        let zone_logic = log.regroups(group, range.from, range.to, range.limit)?;
        let admin = log.admin_memberships(group, range.from, range.to, range.limit)?;
        Ok((zone_logic, admin))
    })
    .await?;
    let mut regroups: Vec<RegroupView> = zone_logic
        .into_iter()
        .map(|row| RegroupView::new(&shared, row))
        .chain(
            admin
                .into_iter()
                .filter_map(|row| RegroupView::of_admin(&shared, row)),
        )
        .collect();
    // Both lists come newest first; merged, the limit holds for the whole.
    regroups.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
    regroups.truncate(range.limit);
    Ok(Json(Regroups { regroups }))
}

#[derive(Debug, Serialize)]
struct PrivateCalls {
    /// Calls up now (ringing or connected); they are logged when they end.
    active: usize,
    private_calls: Vec<PrivateCallView>,
}

#[derive(Debug, Serialize)]
struct PrivateCallView {
    id: i64,
    call_id: u64,
    caller: Named,
    callee: Named,
    /// The temporary group the call used (its bursts are under this id).
    group: u32,
    emergency: bool,
    /// `completed`, `declined`, `busy`, `no-answer`, `offline`, `cancelled` or
    /// `disconnected`.
    outcome: &'static str,
    started_at_ms: UnixMs,
    answered_at_ms: Option<UnixMs>,
    ended_at_ms: UnixMs,
}

impl PrivateCallView {
    fn new(shared: &OpsState, row: PrivateCallRow) -> Self {
        let c = row.record;
        Self {
            id: row.id,
            call_id: c.call_id,
            caller: Named::terminal(shared, c.caller.0),
            callee: Named::terminal(shared, c.callee.0),
            group: c.group.0,
            emergency: c.emergency,
            outcome: c.outcome.as_str(),
            started_at_ms: c.started_at_ms,
            answered_at_ms: c.answered_at_ms,
            ended_at_ms: c.ended_at_ms,
        }
    }
}

/// `GET /api/v1/private-calls?from=&to=&limit=`: private calls that ended, by setup
/// time, and how many are up now.
async fn private_calls(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<PrivateCalls>, ApiError> {
    let range = Params::new(query, &["from", "to", "limit"])?.range()?;
    let rows = read(&shared, move |log| {
        log.private_calls(range.from, range.to, range.limit)
    })
    .await?;
    let private_calls = rows
        .into_iter()
        .map(|row| PrivateCallView::new(&shared, row))
        .collect();
    Ok(Json(PrivateCalls {
        active: shared.relay.private_calls.active(),
        private_calls,
    }))
}
