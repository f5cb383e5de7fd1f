//! The admin API: actions that change the running relay, each behind a bearer token of
//! `admin-token` or `admin-token-file` (config), compared in constant time.
//!
//! | method | path | does |
//! |---|---|---|
//! | POST | `/api/v1/admin/terminals/{id}/disable` | refuses the terminal's logins from now on and closes its session at once |
//! | POST | `/api/v1/admin/terminals/{id}/enable` | lets it log in again |
//! | GET | `/api/v1/admin/terminals/disabled` | the disabled terminals |
//! | POST | `/api/v1/admin/groups/{id}/emergency/clear` | clears the group's emergency as a dispatcher would |
//! | PUT | `/api/v1/admin/groups/{id}/members/{terminal}` | adds the member, or changes its rights: body `{"listen": true, "talk": true, "max_priority": "normal"}` (all optional; the priority defaults to the terminal's cap) |
//! | DELETE | `/api/v1/admin/groups/{id}/members/{terminal}` | removes the member |
//!
//! Who acted is stored with every change. With a named token (`admin-token-file` lines
//! `<operator name> <token>`, one per operator) it is the token's operator, whatever the
//! request says: the audit trail names people. With the single unnamed token
//! (`admin-token`), shared by whoever holds it, a changing request may name the operator:
//! `{"by": "duty officer Li"}` (in the PUT body beside the rights; as the whole JSON body
//! of the others, which otherwise need none), "admin" when not given.
//!
//! Answers are JSON: 200 on success; 401 without `Authorization: Bearer <token>` or with a
//! wrong one; 429 (with `Retry-After`), the token unchecked, once the source address made
//! `ops-token-failures-per-minute` failures in its minute (or all addresses together
//! `ops-token-failures-per-minute-total`); 403 when no token is configured; 404 for an unknown terminal, group or
//! member; 400 for a bad body, a body without `Content-Type: application/json` or an id
//! that is not a number; 500 when the call log could not store the action (then nothing
//! changed). Every change is written durably to the call log's `admin_actions` before it
//! takes effect — an emergency clear too, before the group is told (a clear asked while the
//! group is in emergency is logged even if a dispatcher's clear overtakes it) — and the
//! directory changes are replayed at start. A terminal online when its memberships change
//! joins or leaves the groups at once and is told with `Regrouped` (reason ADMIN); losing
//! the right to talk (or priority) takes its floor and queued request away.
//!
//! Each action runs to its end in a task of its own: an HTTP client that goes away after
//! the action was written cannot leave it half applied.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::state::OpsState;
use ptt_calllog::{AdminAction, AdminActionRecord, Record};
use ptt_directory::{GroupId, Priority, TerminalId};
use ptt_relay_core::group::Command;
use ptt_relay_core::roster::RosterError;

mod extract;

use extract::{Admin, Ids, JsonBody, OptionalJson, error};

/// Who the call log names for an action made with the admin token when the request does
/// not say.
const BY: &str = "admin";

/// Longest operator name stored.
const MAX_BY_CHARS: usize = 64;

pub(super) fn routes() -> Router<Arc<OpsState>> {
    Router::new()
        .route("/api/v1/admin/terminals/{id}/disable", post(disable))
        .route("/api/v1/admin/terminals/{id}/enable", post(enable))
        .route("/api/v1/admin/terminals/disabled", get(disabled))
        .route(
            "/api/v1/admin/groups/{id}/emergency/clear",
            post(clear_emergency),
        )
        .route(
            "/api/v1/admin/groups/{id}/members/{terminal}",
            put(set_member).delete(remove_member),
        )
}

/// A terminal's state after `disable` or `enable`.
#[derive(Debug, Serialize)]
struct TerminalState {
    terminal: u32,
    disabled: bool,
    /// Whether an open session was closed.
    disconnected: bool,
}

async fn disable(
    admin: Admin,
    State(shared): State<Arc<OpsState>>,
    Ids(id): Ids<u32>,
    OptionalJson(actor): OptionalJson<Actor>,
) -> Result<Json<TerminalState>, Response> {
    let by = operator(&admin, actor)?;
    detached(async move {
        let terminal = TerminalId(id);
        {
            let _turn = shared.relay.roster.writing().await;
            commit(&shared, AdminAction::Disable { terminal }, &by).await?;
        }
        // After the roster says disabled: a login racing this either is found
        // here or sees the flag once its session is registered.
        let session = shared.relay.online.get(id);
        if let Some(link) = &session {
            ptt_relay_core::session::disconnect_disabled(link);
        }
        tracing::warn!(terminal = id, by, "terminal disabled by an administrator");
        Ok(Json(TerminalState {
            terminal: id,
            disabled: true,
            disconnected: session.is_some(),
        }))
    })
    .await
}

async fn enable(
    admin: Admin,
    State(shared): State<Arc<OpsState>>,
    Ids(id): Ids<u32>,
    OptionalJson(actor): OptionalJson<Actor>,
) -> Result<Json<TerminalState>, Response> {
    let by = operator(&admin, actor)?;
    detached(async move {
        {
            let _turn = shared.relay.roster.writing().await;
            let action = AdminAction::Enable {
                terminal: TerminalId(id),
            };
            commit(&shared, action, &by).await?;
        }
        tracing::info!(terminal = id, by, "terminal enabled by an administrator");
        Ok(Json(TerminalState {
            terminal: id,
            disabled: false,
            disconnected: false,
        }))
    })
    .await
}

/// The terminals disabled now.
#[derive(Debug, Serialize)]
struct Disabled {
    disabled: Vec<u32>,
}

async fn disabled(_: Admin, State(shared): State<Arc<OpsState>>) -> Json<Disabled> {
    Json(Disabled {
        disabled: shared
            .relay
            .roster
            .disabled()
            .into_iter()
            .map(|t| t.0)
            .collect(),
    })
}

/// The answer to an emergency clear.
#[derive(Debug, Serialize)]
struct Cleared {
    group: u32,
    /// False if the group was not in emergency (nothing changed).
    cleared: bool,
}

async fn clear_emergency(
    admin: Admin,
    State(shared): State<Arc<OpsState>>,
    Ids(id): Ids<u32>,
    OptionalJson(actor): OptionalJson<Actor>,
) -> Result<Json<Cleared>, Response> {
    let by = operator(&admin, actor)?;
    detached(async move {
        let Some(group) = shared.relay.group(id).cloned() else {
            return Err(roster_error(RosterError::UnknownGroup(GroupId(id))));
        };
        let _turn = shared.relay.roster.writing().await;
        // A group another relay of the cluster decides is cleared there (its
        // emergency is not known here).
        if group.decides_here() && group.emergency_declarer().is_none() {
            // Nothing to clear, nothing logged.
            return Ok(Json(Cleared {
                group: id,
                cleared: false,
            }));
        }
        // Durable before the effect, like every admin action. The clear itself is
        // also in `emergency_clears` (by terminal 0); this row says who asked.
        let action = AdminAction::ClearEmergency { group: GroupId(id) };
        commit(&shared, action, &by).await?;
        let (reply, cleared) = tokio::sync::oneshot::channel();
        group.command(Command::AdminClearEmergency { reply }).await;
        // The group task ends only at shutdown.
        let cleared = cleared.await.map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay is shutting down",
            )
        })?;
        if cleared {
            tracing::warn!(group = id, by, "emergency cleared by an administrator");
        }
        Ok(Json(Cleared { group: id, cleared }))
    })
    .await
}

/// The body of a member change; every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    #[serde(default = "yes")]
    listen: bool,
    #[serde(default = "yes")]
    talk: bool,
    #[serde(default, alias = "max-priority")]
    max_priority: Option<Priority>,
    /// The operator, see the module docs.
    #[serde(default)]
    by: Option<String>,
}

/// The body of the other changing requests: who acts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Actor {
    by: Option<String>,
}

fn yes() -> bool {
    true
}

/// A membership as it stands after a change.
#[derive(Debug, Serialize)]
struct Member {
    group: u32,
    terminal: u32,
    member: bool,
    listen: bool,
    talk: bool,
    max_priority: Option<Priority>,
    /// Whether the terminal is online (and was regrouped at once).
    online: bool,
}

async fn set_member(
    admin: Admin,
    State(shared): State<Arc<OpsState>>,
    Ids((group, terminal)): Ids<(u32, u32)>,
    JsonBody(body): JsonBody<MemberBody>,
) -> Result<Json<Member>, Response> {
    let by = operator(&admin, Some(Actor { by: body.by }))?;
    let action = AdminAction::SetMember {
        group: GroupId(group),
        terminal: TerminalId(terminal),
        listen: body.listen,
        talk: body.talk,
        max_priority: body.max_priority,
    };
    detached(change_membership(shared, action, group, terminal, by)).await
}

async fn remove_member(
    admin: Admin,
    State(shared): State<Arc<OpsState>>,
    Ids((group, terminal)): Ids<(u32, u32)>,
    OptionalJson(actor): OptionalJson<Actor>,
) -> Result<Json<Member>, Response> {
    let by = operator(&admin, actor)?;
    let action = AdminAction::RemoveMember {
        group: GroupId(group),
        terminal: TerminalId(terminal),
    };
    detached(change_membership(shared, action, group, terminal, by)).await
}

/// Commits a membership change and wakes the terminal's session to follow it.
async fn change_membership(
    shared: Arc<OpsState>,
    action: AdminAction,
    group: u32,
    terminal: u32,
    by: String,
) -> Result<Json<Member>, Response> {
    {
        let _turn = shared.relay.roster.writing().await;
        commit(&shared, action, &by).await?;
    }
    // After the roster changed: a session registering now reads the new
    // roster at its start, one registered already is woken here.
    let online = match shared.relay.online.get(terminal) {
        Some(link) => {
            link.membership_changed.notify_one();
            true
        }
        None => false,
    };
    let rights = shared
        .relay
        .roster
        .membership(TerminalId(terminal), GroupId(group));
    tracing::info!(
        group,
        terminal,
        by,
        member = rights.is_some(),
        "membership changed by an administrator"
    );
    Ok(Json(Member {
        group,
        terminal,
        member: rights.is_some(),
        listen: rights.is_some_and(|r| r.listen),
        talk: rights.is_some_and(|r| r.talk),
        max_priority: rights.map(|r| r.max_priority),
        online,
    }))
}

/// Runs an action to its end in a task of its own and waits for it. Hyper drops a
/// handler's future when its client disconnects; dropped between the durable write and
/// the roster (or the disconnect), an action would be in the log but not in effect until
/// the next restart.
async fn detached<T: Send + 'static>(
    action: impl Future<Output = Result<T, Response>> + Send + 'static,
) -> Result<T, Response> {
    match tokio::spawn(action).await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "admin action failed");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the admin action failed; see the relay's log",
            ))
        }
    }
}

/// Checks `action`, writes it durably to the call log, then applies it to the roster.
/// The caller holds the roster's writing turn.
async fn commit(shared: &OpsState, action: AdminAction, by: &str) -> Result<(), Response> {
    shared.relay.roster.check(&action).map_err(roster_error)?;
    let (done, written) = tokio::sync::oneshot::channel();
    shared
        .relay
        .log
        .log_durable(record(shared, action.clone(), by), move |result| {
            let _ = done.send(result);
        });
    match written.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "admin action not stored; not applied");
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the call log could not store the action, nothing changed: {e}"),
            ));
        }
        Err(_) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay is shutting down",
            ));
        }
    }
    shared.relay.roster.apply(&action).map_err(roster_error)?;
    if let Some(cluster) = &shared.relay.cluster {
        // Every relay of the cluster applies it too (a disabled terminal
        // is refused on all of them).
        let at_ms = i64::try_from(shared.relay.clock.unix_us_now() / 1000).unwrap_or(i64::MAX);
        cluster.share_admin(action, by, at_ms);
    }
    Ok(())
}

fn record(shared: &OpsState, action: AdminAction, by: &str) -> Record {
    Record::Admin(AdminActionRecord {
        action,
        by: by.to_owned(),
        at_ms: i64::try_from(shared.relay.clock.unix_us_now() / 1000).unwrap_or(i64::MAX),
    })
}

fn roster_error(e: RosterError) -> Response {
    let status = match e {
        RosterError::UnknownTerminal(_)
        | RosterError::UnknownGroup(_)
        | RosterError::NotMember { .. } => StatusCode::NOT_FOUND,
        RosterError::NoRights => StatusCode::BAD_REQUEST,
    };
    error(status, &e.to_string())
}

/// Who acted: the operator the token belongs to when it is named (`admin-token-file`),
/// whatever the body says; else the one the request names, "admin" if none. 400 for a
/// name that is empty, too long or holds control characters (it ends up in logs and the
/// audit table), checked even when the token's name wins.
fn operator(admin: &Admin, actor: Option<Actor>) -> Result<String, BadName> {
    let claimed = actor.and_then(|a| a.by);
    let Some(by) = claimed else {
        return Ok(admin.operator.clone().unwrap_or_else(|| BY.to_owned()));
    };
    let by = by.trim();
    if by.is_empty() || by.chars().count() > MAX_BY_CHARS || by.chars().any(char::is_control) {
        return Err(BadName);
    }
    Ok(admin.operator.clone().unwrap_or_else(|| by.to_owned()))
}

/// An operator name [`operator`] refused; answered with 400.
struct BadName;

impl From<BadName> for Response {
    fn from(_: BadName) -> Self {
        error(
            StatusCode::BAD_REQUEST,
            "`by` must be 1 to 64 printable characters",
        )
    }
}
