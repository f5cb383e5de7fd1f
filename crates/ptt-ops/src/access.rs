//! Who may use the ops port: one layer in front of every route.
//!
//! 1. **Host check.** A request whose `Host` is not an IP literal, `localhost` or a name
//!    of `ops-allowed-hosts` is refused with 421. A web page an operator opens elsewhere
//!    could otherwise point its own name at 127.0.0.1 (DNS rebinding) and read the ops
//!    port from the operator's browser as if it were its own site.
//! 2. **View token.** With `view-token` set, every route but `/metrics` (scraped by
//!    Prometheus, which holds nothing private) needs `Authorization: Bearer <view or admin
//!    token>` or the `pttd_view` cookie. A browser gets the cookie by opening
//!    `/?token=<token>` once: the answer sets it (HttpOnly, SameSite=Strict, this session of
//!    the browser) and sends the browser back to `/`, so the token leaves the address bar
//!    and the history. Without `view-token` the port stays open, as its default address is
//!    loopback.
//!
//! Refusals are answered in JSON (`{"error": "..."}`) and logged at most once a minute
//! each, with the count of those not logged: a scanner hammering the port costs no disk.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::state::OpsState;
use crate::token::ViewToken;

/// The cookie a browser holds after `/?token=`.
pub const VIEW_COOKIE: &str = "pttd_view";

/// The route left open with a view token: Prometheus scrapes it without credentials.
const OPEN_PATH: &str = "/metrics";

/// The ops port's access rules, from the configuration.
#[derive(Debug)]
pub struct OpsAccess {
    view_token: Option<ViewToken>,
    /// The view token as the cookie carries it (hex, as cookie values are restricted).
    view_cookie: Option<String>,
    /// `ops-allowed-hosts`, lower case, without a trailing dot.
    allowed_hosts: Vec<String>,
    /// Refused requests (wrong host, missing or wrong view token), for the warning.
    pub(super) refused: LogThrottle,
    /// Requests to the admin API without the right admin token, for the warning.
    pub(super) admin_refused: LogThrottle,
}

impl OpsAccess {
    /// The rules of `view-token` and `ops-allowed-hosts` (validated by the relay's config).
    pub fn new(view_token: Option<ViewToken>, allowed_hosts: &[String]) -> Self {
        Self {
            view_cookie: view_token.as_ref().map(|t| hex(t.expose().as_bytes())),
            view_token,
            allowed_hosts: allowed_hosts.iter().map(|h| normal_host(h)).collect(),
            refused: LogThrottle::default(),
            admin_refused: LogThrottle::default(),
        }
    }

    /// Whether the ops port answers to `host` (a `Host` header value, port included).
    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // `[v6]` or `[v6]:port`: only an address can be bracketed.
            Some(rest) => {
                return rest
                    .split_once(']')
                    .is_some_and(|(ip, _)| ip.parse::<Ipv6Addr>().is_ok());
            }
            None => match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            },
        };
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normal_host(name);
        !name.is_empty() && (name == "localhost" || self.allowed_hosts.contains(&name))
    }
}

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
    let admin = shared.admin_token.as_ref().filter(|t| !t.is_empty());
    let token_matches = |presented: &[u8]| {
        // Both compared, so the time does not tell which token was close.
        let as_view = view.matches(presented);
        let as_admin = admin.is_some_and(|a| a.matches(presented));
        as_view | as_admin
    };
    if bearer(headers).is_some_and(token_matches) || has_cookie(headers, cookie) {
        return next.run(request).await;
    }
    if request.uri().path() == "/"
        && let Some(token) = query_token(&request)
    {
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

/// Whether a `Cookie` header holds `pttd_view=<cookie>`.
fn has_cookie(headers: &HeaderMap, cookie: &str) -> bool {
    use subtle::ConstantTimeEq;
    let mut found = false;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, presented)) = pair.trim().split_once('=')
                && name == VIEW_COOKIE
                && presented.len() == cookie.len()
            {
                found |= bool::from(presented.as_bytes().ct_eq(cookie.as_bytes()));
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

/// A host name as compared: lower case, without the trailing dot of a fully qualified name.
fn normal_host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Lets one warning through per [`LogThrottle::INTERVAL_MS`] and counts the others, so a
/// client repeating a refused request cannot fill the log.
#[derive(Debug, Default)]
pub struct LogThrottle {
    /// Relay-clock ms before which nothing more is logged.
    next_ms: AtomicU64,
    unlogged: AtomicU64,
}

impl LogThrottle {
    /// One line a minute at most.
    pub const INTERVAL_MS: u64 = 60_000;

    /// `Some(n)` if a line may be logged at `now_ms`, `n` being the lines held back since
    /// the last one; `None` (and counted) otherwise.
    pub fn allow(&self, now_ms: u64) -> Option<u64> {
        let next = self.next_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now_ms + Self::INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.unlogged.swap(0, Ordering::Relaxed));
        }
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(hosts: &[&str]) -> OpsAccess {
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        OpsAccess::new(None, &hosts)
    }

    #[test]
    fn hosts_served() {
        let access = access(&["Ops.District.example"]);
        for good in [
            "127.0.0.1",
            "127.0.0.1:7780",
            "10.1.2.3:80",
            "[::1]:7780",
            "[::1]",
            "localhost",
            "LOCALHOST:7780",
            "localhost.:7780",
            "ops.district.example",
            "ops.district.example.:7780",
        ] {
            assert!(access.host_allowed(good), "{good}");
        }
        for bad in [
            "evil.example",
            "evil.example:7780",
            "localhost.evil.example",
            "ops.district.example.evil",
            "[evil.example]:80",
            "",
            ":7780",
            "127.0.0.1.evil.example",
        ] {
            assert!(!access.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn the_throttle_lets_one_line_a_minute_through_and_counts_the_rest() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.allow(1_000), Some(0));
        assert_eq!(throttle.allow(2_000), None);
        assert_eq!(throttle.allow(60_999), None);
        assert_eq!(throttle.allow(61_000), Some(2));
        assert_eq!(throttle.allow(61_001), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pttd_view=abcd"),
        );
        assert!(has_cookie(&headers, "abcd"));
        assert!(!has_cookie(&headers, "abce"));
        assert!(!has_cookie(&headers, "abc"));
        assert_eq!(hex(b"\x00\xffA"), "00ff41");
    }
}
