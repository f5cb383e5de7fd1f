//! What every admin handler extracts from its request before it acts: the proof of the
//! admin token (under the wrong-token rate limit: 429 once the source, or everybody,
//! failed too often), path ids and JSON bodies, each refusing with a JSON error of its own.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::counters::Refusal;
use crate::state::OpsState;
use crate::token_limit;

/// Proof that the request carries an admin token, and whose: the first extractor of every
/// handler, so nothing else about a request is looked at before it is authorised.
pub(super) struct Admin {
    /// The operator the token belongs to (`admin-token-file`), `None` for an unnamed one.
    pub(super) operator: Option<String>,
}

impl FromRequestParts<Arc<OpsState>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<OpsState>,
    ) -> Result<Self, Self::Rejection> {
        if shared.admin_tokens.is_empty() {
            return Err(error(
                StatusCode::FORBIDDEN,
                "admin API disabled: set admin-token or admin-token-file",
            ));
        }
        let source = token_limit::source(&parts.extensions);
        let now = shared.relay.clock.now_ms();
        // Refused before the comparison: past the limit a guess tells nothing.
        if let Err(limited) = shared.token_limit.check(source, now) {
            shared.counters.refused(Refusal::TokenRateLimit);
            if let Some(unlogged) = shared.access.admin_refused.allow(now) {
                tracing::warn!(path = %parts.uri.path(), ?source, unlogged, "admin API: too many wrong tokens, token not checked");
            }
            return Err(limited.into_response());
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
        let operator = presented.and_then(|p| shared.admin_tokens.identify(p));
        match operator {
            Some(operator) => Ok(Admin {
                operator: operator.map(str::to_owned),
            }),
            None => {
                shared.token_limit.failed(source, now);
                shared.counters.admin_auth_failed();
                // At most a line a minute: a client retrying a wrong token fills no disk.
                if let Some(unlogged) = shared.access.admin_refused.allow(now) {
                    tracing::warn!(path = %parts.uri.path(), ?source, unlogged, "admin API: missing or wrong token");
                }
                let mut response = error(StatusCode::UNAUTHORIZED, "a valid admin token is needed");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pttd admin\""),
                );
                Err(response)
            }
        }
    }
}

/// Path ids, with a JSON 400 when they are not numbers.
pub(super) struct Ids<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for Ids<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(ids)) => Ok(Ids(ids)),
            Err(rejection) => {
                tracing::debug!(rejection = rejection.body_text(), "bad path ids");
                let message = format!(
                    "path {}: terminal and group ids are whole numbers",
                    parts.uri.path()
                );
                Err(error(StatusCode::BAD_REQUEST, &message))
            }
        }
    }
}

/// A required JSON body, with a JSON 400 for anything wrong with it (content type,
/// syntax, unknown or mistyped fields).
pub(super) struct JsonBody<T>(pub(super) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(JsonBody(body)),
            Err(rejection) => Err(error(StatusCode::BAD_REQUEST, &rejection.body_text())),
        }
    }
}

/// An optional JSON body: none at all is `None`; a body is read as [`JsonBody`].
pub(super) struct OptionalJson<T>(pub(super) Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            let JsonBody(body) = JsonBody::from_request(request, state).await?;
            return Ok(OptionalJson(Some(body)));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| error(StatusCode::BAD_REQUEST, &rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(OptionalJson(None))
        } else {
            Err(error(
                StatusCode::BAD_REQUEST,
                "a request body needs `Content-Type: application/json`",
            ))
        }
    }
}

/// An error answer: `{"error": "..."}`.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
    }
    (status, Json(Body { error: message })).into_response()
}
