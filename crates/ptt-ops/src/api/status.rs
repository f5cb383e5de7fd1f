//! `GET /api/v1/status-messages`: the status messages terminals sent ("on
//! scene", "need backup"), with the code's label from the directory and whom
//! each went to.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::call_log::read;
use super::named::Named;
use super::params::{ApiError, Params, QueryPairs};
use crate::state::OpsState;
use ptt_calllog::{StatusRow, StatusTarget, UnixMs};

pub(super) fn routes() -> Router<Arc<OpsState>> {
    Router::new().route("/api/v1/status-messages", get(status_messages))
}

#[derive(Debug, Serialize)]
struct StatusMessages {
    status_messages: Vec<StatusView>,
}

#[derive(Debug, Serialize)]
struct StatusView {
    id: i64,
    from: Named,
    /// The status code, 0 for text only.
    code: u32,
    /// The code's label in the directory ("On scene"); empty for code 0.
    label: String,
    text: String,
    /// `terminal`, `group` or `dispatchers`.
    to: &'static str,
    /// The terminal or group it went to; absent for the dispatchers.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Named>,
    at_ms: UnixMs,
}

impl StatusView {
    fn new(shared: &OpsState, row: StatusRow) -> Self {
        let r = row.record;
        let label = u16::try_from(r.code)
            .ok()
            .and_then(|code| shared.relay.directory.status(code))
            .map(|status| status.label.clone())
            .unwrap_or_default();
        let (to, target) = match r.target {
            StatusTarget::Terminal(t) => ("terminal", Some(Named::terminal(shared, t.0))),
            StatusTarget::Group(g) => ("group", Some(Named::group(shared, g.0))),
            StatusTarget::Dispatchers => ("dispatchers", None),
        };
        Self {
            id: row.id,
            from: Named::terminal(shared, r.from.0),
            code: r.code,
            label,
            text: r.text,
            to,
            target,
            at_ms: r.at_ms,
        }
    }
}

/// `GET /api/v1/status-messages?from=&to=&limit=`: newest first.
async fn status_messages(
    State(shared): State<Arc<OpsState>>,
    query: QueryPairs,
) -> Result<Json<StatusMessages>, ApiError> {
    let params = Params::new(query, &["from", "to", "limit"])?;
    let range = params.range()?;
    let rows = read(&shared, move |log| {
        log.status_messages(range.from, range.to, range.limit)
    })
    .await?;
    let status_messages = rows
        .into_iter()
        .map(|row| StatusView::new(&shared, row))
        .collect();
    Ok(Json(StatusMessages { status_messages }))
}
