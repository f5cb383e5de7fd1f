//! The operations port (HTTP, separate from the voice port): Prometheus
//! metrics, the JSON history API, the live dashboard and the dispatchers' console page.
//!
//! Everything here reads what the relay already keeps — counters, the
//! groups' shared state, the call log — and never sits on the voice path: a
//! slow scraper or a browser left open on a wall screen costs the terminals
//! nothing.
//!
//! Every route sits behind the access layer ([`OpsAccess`]): the `Host` check against DNS
//! rebinding and, when `view-token` is set, the token that guards history and recordings.
//! The port's own server holds its clients to [`OpsLimits`]: a connection cap, header-read
//! and idle timeouts, and a rate limit of wrong tokens.
//!
//! This crate owns the HTTP surface and its access rules. It reads the relay only through
//! the core's [`RelayView`](ptt_relay_core::view::RelayView) (and acts through it for the
//! admin API), never through the relay's whole state, and knows nothing of how the relay
//! is configured or started: the composition root hands it its settings.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod access;
mod admin;
mod api;
mod console;
mod counters;
mod dashboard;
mod embedded;
mod encode;
mod guard;
mod limits;
mod log_throttle;
mod prometheus;
mod prometheus_trust;
mod server;
mod state;
mod tiles;
mod token;
mod token_limit;
mod watchdog;

pub use access::OpsAccess;
pub use guard::VIEW_COOKIE;
pub use limits::OpsLimits;
pub use log_throttle::LogThrottle;
pub use state::OpsState;
pub use tiles::{TileUrl, TileUrlError};
pub use token::{AdminTokenLineError, AdminTokens, Token, ViewToken};

/// The ops HTTP routes over the relay's shared state, all behind the access layer.
pub fn router(shared: Arc<OpsState>) -> Router {
    Router::new()
        .merge(prometheus::routes())
        .merge(api::routes())
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(console::routes())
        // A layer over the merged router covers every route, those added later included
        // (and the fallback): no route can forget the check.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .with_state(shared)
}

/// Binds the ops port before the relay starts, so a taken port is a start-up
/// error rather than a silent gap in monitoring.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Serves the ops routes of `shared` on `listener` under its [`OpsLimits`] until `stop`
/// is cancelled, then lets the answers in progress finish.
pub async fn serve(listener: TcpListener, shared: Arc<OpsState>, stop: CancellationToken) {
    server::serve(listener, router(shared.clone()), shared, stop).await;
}
