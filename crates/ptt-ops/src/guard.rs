//! The layer in front of every ops route: the host check, then the view token, as
//! [`OpsAccess`](crate::access::OpsAccess) rules; refusals answered in JSON, counted and
//! warned of through a [`LogThrottle`](crate::log_throttle::LogThrottle).
//!
//! A wrong credential (bearer, `?token=` or `pttd_view` cookie) counts against the
//! wrong-token rate limit ([`TokenLimit`](crate::token_limit::TokenLimit)), as the guard
//! compares bearers with the admin token too; a request without any is not a guess and
//! does not count.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::counters::Refusal;
use crate::state::OpsState;
use crate::token_limit;

/// The cookie a browser holds after `/?token=`.
pub const VIEW_COOKIE: &str = "pttd_view";

/// The route left open with a view token: Prometheus scrapes it without credentials.
const OPEN_PATH: &str = "/metrics";

/// The layer's function: the host check, then the view token.
pub(super) async fn guard(
    State(shared): State<Arc<OpsState>>,
    request: Request,
    next: Next,
) -> Response {
    let access = &shared.access;
    // HTTP/1.1 carries the host in `Host`, HTTP/2 in the URI; a request with neither did
    // not come from a browser, which is what the check is about.
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            let value = request.headers().get(header::HOST)?;
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        });
    if let Some(host) = host
        && !access.host_allowed(host.rsplit('@').next().unwrap_or(&host))
    {
        shared.counters.refused(Refusal::Host);
        warn(&shared, "ops port: request for another host refused", &host);
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "this host name is not served here; add it to ops-allowed-hosts",
        );
    }
    let (Some(view), Some(cookie)) = (&access.view_token, &access.view_cookie) else {
        return next.run(request).await;
    };
    if request.uri().path() == OPEN_PATH {
        return next.run(request).await;
    }
    let headers = request.headers();
    let token_matches = |presented: &[u8]| {
        // Both compared, so the time does not tell which token was close.
        let as_view = view.matches(presented);
        let as_admin = shared.admin_tokens.identify(presented).is_some();
        as_view | as_admin
    };
    let query = (request.uri().path() == "/")
        .then(|| query_token(&request))
        .flatten();
    let bearer = bearer(headers);
    let cookie_matches = view_cookie(headers, cookie);
    let source = token_limit::source(request.extensions());
    let now = shared.relay.clock.now_ms();
    let presented = bearer.is_some() || cookie_matches.is_some() || query.is_some();
    if presented && let Err(limited) = shared.token_limit.check(source, now) {
        shared.counters.refused(Refusal::TokenRateLimit);
        warn(
            &shared,
            "ops port: too many wrong tokens, token not checked",
            "",
        );
        return limited.into_response();
    }
    if bearer.is_some_and(token_matches) || cookie_matches == Some(true) {
        return next.run(request).await;
    }
    if presented {
        shared.token_limit.failed(source, now);
    }
    shared.counters.refused(Refusal::ViewToken);
    if let Some(token) = query {
        if token_matches(token.as_bytes()) {
            return enter(cookie);
        }
        warn(&shared, "ops port: wrong token in /?token=", "");
        return unauthorized("wrong token");
    }
    warn(
        &shared,
        "ops port: request without the view token refused",
        request.uri().path(),
    );
    unauthorized(
        "the ops port needs the view token: send `Authorization: Bearer <token>`, \
         or open /?token=<token> once in the browser",
    )
}

/// The answer to `/?token=<right token>`: the cookie, and back to `/` without the token.
fn enter(cookie: &str) -> Response {
    let set_cookie = format!("{VIEW_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)?
        .as_bytes()
        .strip_prefix(b"Bearer ")
}

/// Whether a `Cookie` header holds `pttd_view=<cookie>`: `None` without a `pttd_view`
/// cookie, `Some(false)` if none of them is right.
fn view_cookie(headers: &HeaderMap, cookie: &str) -> Option<bool> {
    use subtle::ConstantTimeEq;
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, presented)) = pair.trim().split_once('=')
                && name == VIEW_COOKIE
            {
                let right = presented.len() == cookie.len()
                    && bool::from(presented.as_bytes().ct_eq(cookie.as_bytes()));
                found = Some(found.unwrap_or(false) | right);
            }
        }
    }
    found
}

/// The `token` query parameter, decoded.
fn query_token(request: &Request) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        token: Option<String>,
    }
    Query::<Entry>::try_from_uri(request.uri()).ok()?.0.token
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"pttd ops\""),
    );
    response
}

/// An error answer: `{"error": "..."}`.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn warn(shared: &OpsState, what: &'static str, detail: &str) {
    if let Some(unlogged) = shared.access.refused.allow(shared.relay.clock.now_ms()) {
        tracing::warn!(detail, unlogged, "{what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::hex;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pttd_view=abcd"),
        );
        assert_eq!(view_cookie(&headers, "abcd"), Some(true));
        assert_eq!(view_cookie(&headers, "abce"), Some(false));
        assert_eq!(view_cookie(&headers, "abc"), Some(false));
        assert_eq!(view_cookie(&HeaderMap::new(), "abcd"), None);
        assert_eq!(hex(b"\x00\xffA"), "00ff41");
    }
}
