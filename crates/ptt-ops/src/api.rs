//! The read-only history API (`/api/v1/...`, JSON): groups and terminals as
//! they are now (with zone logic's members and positions), zones, and bursts,
//! alerts, emergencies, regroupings and private calls from the call log.
//!
//! What is live (holders, presence, queues) is read from the relay's shared
//! state: atomics and copy-on-write lists, no lock the voice path takes. What
//! is history comes from the call log through a read-only connection of its
//! own, opened on tokio's blocking pool, so a slow query never holds up an
//! async worker (or the writer: SQLite's WAL lets both run at once).
//! Listings are newest first over `[from, to)` in unix ms, `limit` rows
//! (default 100, at most 1000).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use crate::state::OpsState;
use ptt_calllog::{AlertRow, BurstRow, EmergencyRow, UnixMs};
use ptt_directory::{GroupId, GroupKind, Role, TerminalId};

mod call_log;
mod dispatch;
mod named;
mod params;
mod status;

use call_log::read;
use named::Named;
use params::{ApiError, Params, QueryPairs, group_param};

pub(super) fn routes() -> Router<Arc<OpsState>> {
    Router::new()
        .merge(dispatch::routes())
        .merge(status::routes())
        .route("/api/v1/groups", get(groups))
        .route("/api/v1/terminals", get(terminals))
        .route("/api/v1/bursts", get(bursts))
        .route("/api/v1/bursts/{id}/recording", get(recording))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/emergencies", get(emergencies))
}

#[derive(Debug, Serialize)]
struct Groups {
    /// This relay's id in its cluster; absent for a relay on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    relay: Option<String>,
    groups: Vec<GroupView>,
}

#[derive(Debug, Serialize)]
struct GroupView {
    id: u32,
    name: String,
    kind: GroupKind,
    all_call: bool,
    /// Members now (the directory file as changed through the admin API, and the
    /// members zone logic added).
    member_count: usize,
    members: Vec<u32>,
    /// Terminals hearing the group now.
    listening: usize,
    holder: Option<Holder>,
    queue_length: u32,
    emergency: Option<Named>,
    /// Members zone logic added (also in `members`), with the premises that brought each.
    dynamic_members: Vec<dispatch::DynamicMember>,
    /// A relay patrol's rule and state; `None` for other groups.
    patrol: Option<dispatch::Patrol>,
    /// In a cluster, whether this relay decides the group's floor now;
    /// absent for a relay on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_here: Option<bool>,
    /// In a cluster, the relay that decides the group's floor now, as the
    /// relays announce it; absent alone, or while no relay does.
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
}

#[derive(Debug, Serialize)]
struct Holder {
    id: u32,
    name: String,
    burst_id: u32,
}

/// `GET /api/v1/groups`: every group with its members and its floor now.
async fn groups(State(shared): State<Arc<OpsState>>, query: QueryPairs) -> Response {
    if let Err(error) = Params::new(query, &[]) {
        return error.into_response();
    }
    let mut members = members_by_group(&shared);
    let clustered = shared.relay.cluster.is_some();
    let deciders = shared
        .relay
        .cluster
        .as_ref()
        .map(|cluster| cluster.elsewhere.deciders())
        .unwrap_or_default();
    let groups = shared
        .relay
        .directory
        .groups()
        .iter()
        .map(|group| {
            let live = shared.relay.group(group.id.0);
            let members = members.remove(&group.id.0).unwrap_or_default();
            GroupView {
                id: group.id.0,
                name: group.name.clone(),
                kind: group.kind,
                all_call: group.all_call,
                member_count: members.len(),
                members,
                listening: live.map_or(0, |g| g.listeners().len()),
                holder: live.and_then(|g| g.holder()).map(|(id, burst_id)| Holder {
                    id,
                    name: shared.relay.terminal_name(id),
                    burst_id,
                }),
                queue_length: live.map_or(0, |g| g.queue_len()),
                emergency: live
                    .and_then(|g| g.emergency_declarer())
                    .map(|id| Named::terminal(&shared, id)),
                dynamic_members: dispatch::dynamic_members(&shared, group.id),
                patrol: dispatch::patrol(&shared, group),
                decided_here: clustered.then(|| live.is_some_and(|g| g.decides_here())),
                decided_by: if live.is_some_and(|g| clustered && g.decides_here()) {
                    shared.relay.cluster_relay().map(str::to_owned)
                } else {
                    deciders.get(&group.id.0).cloned()
                },
            }
        })
        .collect();
    let relay = shared.relay.cluster_relay().map(str::to_owned);
    Json(Groups { relay, groups }).into_response()
}

/// Members of every group now, by group id, each list in terminal id order.
fn members_by_group(shared: &OpsState) -> HashMap<u32, Vec<u32>> {
    let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
    for terminal in shared.relay.directory.terminals() {
        for (group, _) in shared.relay.roster.groups_of(terminal.id) {
            out.entry(group.id.0).or_default().push(terminal.id.0);
        }
    }
    for members in out.values_mut() {
        members.sort_unstable();
    }
    out
}

#[derive(Debug, Serialize)]
struct Terminals {
    terminals: Vec<TerminalView>,
}

#[derive(Debug, Serialize)]
struct TerminalView {
    id: u32,
    name: String,
    role: Role,
    organisation: String,
    /// Has an authenticated session now (in a cluster: on any relay).
    online: bool,
    /// In a cluster, the relay its session is on; absent alone or offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    relay: Option<String>,
    /// Disabled through the admin API: may not log in.
    disabled: bool,
    /// Groups it hears now (joined) on this relay, by id.
    groups: Vec<u32>,
    /// Its last reported position; `None` if it never reported one since the relay
    /// started.
    location: Option<dispatch::Location>,
}

/// `GET /api/v1/terminals`: every terminal with its presence now.
async fn terminals(State(shared): State<Arc<OpsState>>, query: QueryPairs) -> Response {
    if let Err(error) = Params::new(query, &[]) {
        return error.into_response();
    }
    // Who hears which group, from the groups' listener lists (lock-free
    // snapshots), rather than asking every session.
    let mut joined: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for group in shared.relay.directory.groups() {
        if let Some(live) = shared.relay.group(group.id.0) {
            for link in live.listeners().iter() {
                joined.entry(link.terminal).or_default().push(group.id.0);
            }
        }
    }
    let mut elsewhere = shared
        .relay
        .cluster
        .as_ref()
        .map(|cluster| cluster.elsewhere.terminals())
        .unwrap_or_default();
    let terminals = shared
        .relay
        .directory
        .terminals()
        .iter()
        .map(|t| {
            let mut groups = joined.remove(&t.id.0).unwrap_or_default();
            groups.sort_unstable();
            let here = shared.relay.online.contains(t.id.0);
            let relay = if here {
                shared.relay.cluster_relay().map(str::to_owned)
            } else {
                elsewhere.remove(&t.id.0)
            };
            TerminalView {
                id: t.id.0,
                name: t.name.clone(),
                role: t.role,
                organisation: t.organisation.clone(),
                online: here || relay.is_some(),
                relay,
                disabled: shared.relay.roster.is_disabled(t.id),
                groups,
                location: dispatch::location(&shared, t.id.0),
            }
        })
        .collect();
    Json(Terminals { terminals }).into_response()
}

#[derive(Debug, Serialize)]
struct Bursts {
    bursts: Vec<BurstView>,
}

#[derive(Debug, Serialize)]
struct BurstView {
    /// Row id in the call log (what `/bursts/{id}/recording` takes).
    id: i64,
    burst_id: u32,
    group: Named,
    talker: Named,
    started_at_ms: UnixMs,
    ended_at_ms: UnixMs,
    priority: &'static str,
    kind: &'static str,
    outcome: &'static str,
    frames: u32,
    /// URL of the Ogg Opus recording on this port, if there is one.
    recording: Option<String>,
    /// The relay of the cluster that decided (and recorded) the burst, when
    /// another relay did: its recording is served by that relay's port.
    #[serde(skip_serializing_if = "Option::is_none")]
    relay: Option<String>,
}

impl BurstView {
    fn new(shared: &OpsState, row: BurstRow, relay: Option<String>) -> Self {
        let b = row.record;
        Self {
            id: row.id,
            burst_id: b.burst_id,
            group: Named::group(shared, b.group.0),
            talker: Named::terminal(shared, b.talker.0),
            started_at_ms: b.started_at_ms,
            ended_at_ms: b.ended_at_ms,
            priority: b.priority.as_str(),
            kind: b.kind.as_str(),
            outcome: b.outcome.as_str(),
            frames: b.frames,
            recording: b
                .recording
                .filter(|_| relay.is_none())
                .map(|_| format!("/api/v1/bursts/{}/recording", row.id)),
            relay,
        }
    }
}

/// `GET /api/v1/bursts?group=&from=&to=&limit=`: talk bursts, newest first.
async fn bursts(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<Bursts>, ApiError> {
    let params = Params::new(query, &["group", "from", "to", "limit"])?;
    let group = group_param(&shared, &params)?;
    let range = params.range()?;
    let (rows, mut relays) = read(&shared, move |log| {
        let rows = log.bursts(group.map(GroupId), range.from, range.to, range.limit)?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        Ok((rows, log.written_by_other_relays("bursts", &ids)?))
    })
    .await?;
    let bursts = rows
        .into_iter()
        .map(|r| {
            let relay = relays.remove(&r.id);
            BurstView::new(&shared, r, relay)
        })
        .collect();
    Ok(Json(Bursts { bursts }))
}

/// `GET /api/v1/bursts/{id}/recording`: the burst's Ogg Opus file, streamed.
async fn recording(
    State(shared): State<Arc<OpsState>>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_param("id", format!("{id:?} is not a burst row id")))?;
    let (row, elsewhere) = read(&shared, move |log| {
        let row = log.burst(id)?;
        Ok((row, log.written_by_other_relays("bursts", &[id])?))
    })
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found(format!("no burst {id}")))?;
    if let Some(relay) = elsewhere.get(&id) {
        return Err(ApiError::not_found(format!(
            "burst {id} was decided by relay {relay} of the cluster: its recording is on that relay"
        )));
    }
    let no_recording = || ApiError::not_found(format!("burst {id} has no recording"));
    let relative = row.record.recording.ok_or_else(no_recording)?;
    let root = shared
        .relay
        .recorder
        .dir()
        .ok_or_else(no_recording)?
        .to_path_buf();
    let path = ptt_recording::resolve(&root, &relative).ok_or_else(no_recording)?;
    // `resolve` refuses `..` and absolute paths; a symlink could still lead
    // out, so the real path must stay under the real root too.
    let (Ok(root), Ok(path)) = (
        tokio::fs::canonicalize(&root).await,
        tokio::fs::canonicalize(&path).await,
    ) else {
        let lost_at = read(&shared, move |log| log.recording_lost_at(id)).await?;
        return Err(ApiError::not_found(match lost_at {
            Some(at_ms) => format!(
                "the audio of burst {id} was lost in a crash of the relay \
                 (found missing by crash recovery at unix ms {at_ms})"
            ),
            None => format!("the recording of burst {id} is gone (deleted by retention)"),
        }));
    };
    if !path.starts_with(&root) {
        return Err(no_recording());
    }
    // Served with byte ranges and a length, so a player can seek and show
    // the duration.
    let mut response = ServeFile::new(&path)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::internal("reading the recording", e))?
        .map(Body::new);
    if response.status().is_success() {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/ogg"));
        let disposition = format!("inline; filename=\"burst-{id}.opus\"");
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

#[derive(Debug, Serialize)]
struct Alerts {
    alerts: Vec<AlertView>,
}

#[derive(Debug, Serialize)]
struct AlertView {
    id: i64,
    alert_id: u64,
    from: Named,
    text: String,
    groups: Vec<Named>,
    at_ms: UnixMs,
    acks: Vec<AckView>,
}

#[derive(Debug, Serialize)]
struct AckView {
    terminal: Named,
    kind: &'static str,
    status_code: Option<u16>,
    at_ms: UnixMs,
}

impl AlertView {
    fn new(shared: &OpsState, row: AlertRow) -> Self {
        let a = row.alert;
        Self {
            id: row.id,
            alert_id: a.alert_id,
            from: Named::terminal(shared, a.from.0),
            text: a.text,
            groups: a.groups.iter().map(|g| Named::group(shared, g.0)).collect(),
            at_ms: a.at_ms,
            acks: row
                .acks
                .into_iter()
                .map(|ack| AckView {
                    terminal: Named::terminal(shared, ack.terminal.0),
                    kind: ack.kind.as_str(),
                    status_code: ack.status_code,
                    at_ms: ack.at_ms,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/alerts?from=&to=&limit=`: alerts with their acknowledgements.
async fn alerts(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<Alerts>, ApiError> {
    let range = Params::new(query, &["from", "to", "limit"])?.range()?;
    let rows = read(&shared, move |log| {
        log.alerts(range.from, range.to, range.limit)
    })
    .await?;
    let alerts = rows
        .into_iter()
        .map(|r| AlertView::new(&shared, r))
        .collect();
    Ok(Json(Alerts { alerts }))
}

#[derive(Debug, Serialize)]
struct Emergencies {
    emergencies: Vec<EmergencyView>,
}

#[derive(Debug, Serialize)]
struct EmergencyView {
    id: i64,
    group: Named,
    declared_by: Named,
    declared_at_ms: UnixMs,
    /// `None` while the emergency is open.
    cleared: Option<Cleared>,
}

#[derive(Debug, Serialize)]
struct Cleared {
    /// The dispatcher; id 0 for a clear through the admin API, named after
    /// the operator who asked for it.
    by: Named,
    at_ms: UnixMs,
}

impl EmergencyView {
    fn new(shared: &OpsState, row: EmergencyRow) -> Self {
        Self {
            id: row.id,
            group: Named::group(shared, row.group.0),
            declared_by: Named::terminal(shared, row.terminal.0),
            declared_at_ms: row.declared_at_ms,
            cleared: row
                .cleared
                .map(|(by, at_ms): (TerminalId, UnixMs)| Cleared {
                    by: match row.cleared_by_operator.clone() {
                        Some(operator) if by.0 == 0 => Named {
                            id: 0,
                            name: operator,
                        },
                        _ => Named::terminal(shared, by.0),
                    },
                    at_ms,
                }),
        }
    }
}

/// `GET /api/v1/emergencies?group=&from=&to=&limit=`.
async fn emergencies(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<Emergencies>, ApiError> {
    let params = Params::new(query, &["group", "from", "to", "limit"])?;
    let group = group_param(&shared, &params)?;
    let range = params.range()?;
    let rows = read(&shared, move |log| {
        log.emergencies(group.map(GroupId), range.from, range.to, range.limit)
    })
    .await?;
    let emergencies = rows
        .into_iter()
        .map(|r| EmergencyView::new(&shared, r))
        .collect();
    Ok(Json(Emergencies { emergencies }))
}
