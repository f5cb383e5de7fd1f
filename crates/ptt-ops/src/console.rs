//! The dispatchers' console: a page served by the relay at `/console` on the
//! ops port, which logs in to the console port over WebTransport
//! (`ptt_relay_core::browser`) as a terminal of the directory.
//!
//! Like the dashboard, its files are compiled into the binary (no CDN, no
//! build step). The page fetches `/api/v1/console` each time it connects:
//! the console port's UDP port and the SHA-256 of the certificate it
//! presents now, which the browser pins (`serverCertificateHashes`), as the
//! relay renews it every few days, and the map's tile server if the site
//! has one (`console-tiles`), whose origin the page's policy then allows
//! images from.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::state::OpsState;
use crate::embedded::embedded;

/// The page's own files; voice and control go to the console port, which
/// a WebTransport URL names by its `https:` scheme; audio plays from
/// buffers the page makes (`blob:`); the microphone needs no source. Images
/// come from the page itself, or also from the tile server ([`page_policy`]).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self' https:; media-src 'self' blob:; img-src 'self' data:; \
                   worker-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/console/index.html");
const CONSOLE_CSS: &str = include_str!("assets/console/console.css");
const CONSOLE_JS: &str = include_str!("assets/console/console.js");
const PROTO_JS: &str = include_str!("assets/console/proto.js");
const VOICE_JS: &str = include_str!("assets/console/voice.js");
const WORKLET_JS: &str = include_str!("assets/console/worklet.js");
const API_JS: &str = include_str!("assets/console/api.js");
const MAP_JS: &str = include_str!("assets/console/map.js");
const ROLLCALL_JS: &str = include_str!("assets/console/rollcall.js");
const STATUSFEED_JS: &str = include_str!("assets/console/statusfeed.js");
const PRIVATECALL_JS: &str = include_str!("assets/console/privatecall.js");
const BURSTS_JS: &str = include_str!("assets/console/bursts.js");
const OPERATOR_JS: &str = include_str!("assets/console/operator.js");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Where a console connects, as `GET /api/v1/console` answers.
#[derive(Debug, Serialize)]
struct ConsolePort {
    /// The console port's UDP port (on the host the page was loaded from).
    port: u16,
    /// The WebTransport session's path.
    path: &'static str,
    /// SHA-256 of the certificate the port presents now, lowercase hex.
    certificate_sha256: String,
    /// The map's tile URL template (`{z}/{x}/{y}`), or null: zones only.
    tiles: Option<String>,
    /// How far around an emergency a backup call pulls guards in, metres
    /// (`backup-radius-m`), for the map to draw.
    backup_radius_m: f64,
}

/// The console's routes: the page, its modules and where to connect.
pub(super) fn routes() -> Router<Arc<OpsState>> {
    Router::new()
        .route(
            "/console",
            get(|State(shared): State<Arc<OpsState>>| async move {
                embedded("text/html; charset=utf-8", page_policy(&shared), INDEX_HTML)
            }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(JAVASCRIPT, CONSOLE_JS) }),
        )
        .route(
            "/console/proto.js",
            get(|| async { asset(JAVASCRIPT, PROTO_JS) }),
        )
        .route(
            "/console/voice.js",
            get(|| async { asset(JAVASCRIPT, VOICE_JS) }),
        )
        .route(
            "/console/worklet.js",
            get(|| async { asset(JAVASCRIPT, WORKLET_JS) }),
        )
        .route(
            "/console/api.js",
            get(|| async { asset(JAVASCRIPT, API_JS) }),
        )
        .route(
            "/console/map.js",
            get(|| async { asset(JAVASCRIPT, MAP_JS) }),
        )
        .route(
            "/console/rollcall.js",
            get(|| async { asset(JAVASCRIPT, ROLLCALL_JS) }),
        )
        .route(
            "/console/statusfeed.js",
            get(|| async { asset(JAVASCRIPT, STATUSFEED_JS) }),
        )
        .route(
            "/console/privatecall.js",
            get(|| async { asset(JAVASCRIPT, PRIVATECALL_JS) }),
        )
        .route(
            "/console/bursts.js",
            get(|| async { asset(JAVASCRIPT, BURSTS_JS) }),
        )
        .route(
            "/console/operator.js",
            get(|| async { asset(JAVASCRIPT, OPERATOR_JS) }),
        )
        .route("/api/v1/console", get(console_port))
}

/// `GET /api/v1/console`: where the console port is and what it presents.
async fn console_port(State(shared): State<Arc<OpsState>>) -> Json<ConsolePort> {
    let browsers = &shared.relay.browsers;
    Json(ConsolePort {
        port: browsers.local_addr().port(),
        path: ptt_relay_core::browser::SESSION_PATH,
        certificate_sha256: browsers.certificate_sha256(),
        tiles: shared
            .console_tiles
            .as_ref()
            .map(|tiles| tiles.template().to_owned()),
        backup_radius_m: shared.relay.dispatch.backup_radius_m(),
    })
}

/// The page's Content-Security-Policy: [`CSP`], with the tile server's
/// origin among the image sources when there is one.
fn page_policy(shared: &OpsState) -> HeaderValue {
    let Some(tiles) = &shared.console_tiles else {
        return HeaderValue::from_static(CSP);
    };
    let policy = CSP.replace(
        "img-src 'self' data:;",
        &format!("img-src 'self' data: {};", tiles.origin()),
    );
    // A checked origin is visible ASCII; were it not, the map loses its
    // tiles rather than the page its policy.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static(CSP))
}

/// One of the page's files, under its policy.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    embedded(content_type, HeaderValue::from_static(CSP), body)
}
