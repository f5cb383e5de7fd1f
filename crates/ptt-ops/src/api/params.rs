//! Query parameters and errors of the history API: every refusal is JSON
//! `{ "error": "..." }` with the right status, and a bad parameter is a 400
//! that names it, so a typo in a script (`?form=`) is caught, not ignored.

use std::str::FromStr;

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state::OpsState;
use ptt_calllog::UnixMs;

/// Rows a listing returns unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: usize = 100;

/// Most rows one listing returns.
pub(crate) const MAX_LIMIT: usize = 1000;

/// A refused API request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    /// 400: parameter `name` is wrong, and why.
    pub(crate) fn bad_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: format!("{name}: {why}"),
        }
    }

    /// 404 with what was not found.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: what.into(),
        }
    }

    /// 500; the detail is logged, the client gets `what`.
    pub(crate) fn internal(what: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "{what}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("{what}: {detail}"),
        }
    }

    /// The status this error answers with.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: &self.message,
        });
        (self.status, body).into_response()
    }
}

/// The query string of one request, checked against the parameters its
/// endpoint knows.
#[derive(Debug)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Takes the parsed query; refuses unknown and repeated parameters.
    pub(crate) fn new(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        known: &[&str],
    ) -> Result<Self, ApiError> {
        let Query(pairs) = query.map_err(|e| ApiError::bad_param("query", e.body_text()))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ApiError::bad_param(
                    name,
                    format!("unknown parameter (known: {})", known.join(", ")),
                ));
            }
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::bad_param(name, "given more than once"));
            }
        }
        Ok(Self(pairs))
    }

    /// Parameter `name` parsed, `None` if absent; `what` says what it must be.
    pub(crate) fn get<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.0.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, value)) => value
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_param(name, format!("{value:?} is not {what}"))),
        }
    }

    /// The `from`, `to` and `limit` every listing takes.
    pub(crate) fn range(&self) -> Result<Range, ApiError> {
        let time = "a unix time in milliseconds";
        let from: UnixMs = self.get("from", time)?.unwrap_or(0);
        let to: UnixMs = self.get("to", time)?.unwrap_or(UnixMs::MAX);
        if from < 0 {
            return Err(ApiError::bad_param("from", "must not be negative"));
        }
        if to <= from {
            return Err(ApiError::bad_param("to", "must be after from"));
        }
        let limit = self
            .get("limit", "a number of rows")?
            .unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_param(
                "limit",
                format!("must be 1 to {MAX_LIMIT}"),
            ));
        }
        Ok(Range { from, to, limit })
    }
}

/// A listing's window: rows in `[from, to)`, newest first, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    /// Start (inclusive), unix ms.
    pub(crate) from: UnixMs,
    /// End (exclusive), unix ms.
    pub(crate) to: UnixMs,
    /// Most rows.
    pub(crate) limit: usize,
}

/// The raw query of a request, as [`Params::new`] takes it.
pub(crate) type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The optional `group` filter; a group that does not exist is a 400.
pub(crate) fn group_param(shared: &OpsState, params: &Params) -> Result<Option<u32>, ApiError> {
    let group = params.get::<u32>("group", "a group id")?;
    match group {
        Some(id) if shared.relay.group(id).is_none() => {
            Err(ApiError::bad_param("group", format!("no group {id}")))
        }
        _ => Ok(group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)], known: &[&str]) -> Result<Params, ApiError> {
        let pairs = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Params::new(Ok(Query(pairs)), known)
    }

    const KNOWN: &[&str] = &["from", "to", "limit"];

    #[test]
    fn defaults_and_bounds() {
        let range = params(&[], KNOWN).unwrap().range().unwrap();
        assert_eq!(
            range,
            Range {
                from: 0,
                to: UnixMs::MAX,
                limit: DEFAULT_LIMIT
            }
        );
        let range = params(&[("from", "5"), ("to", "9"), ("limit", "1000")], KNOWN)
            .unwrap()
            .range()
            .unwrap();
        assert_eq!((range.from, range.to, range.limit), (5, 9, 1000));
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("limit", "0")], "limit:"),
            (&[("limit", "1001")], "limit:"),
            (&[("limit", "many")], "limit:"),
            (&[("from", "yesterday")], "from:"),
            (&[("from", "-1")], "from:"),
            (&[("from", "10"), ("to", "10")], "to:"),
            (&[("form", "1")], "form:"),
            (&[("to", "1"), ("to", "2")], "to:"),
        ];
        for (pairs, named) in cases {
            let error = params(pairs, KNOWN).and_then(|p| p.range()).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{pairs:?}");
            assert!(
                error.message.starts_with(named),
                "{pairs:?}: {}",
                error.message
            );
        }
    }
}
