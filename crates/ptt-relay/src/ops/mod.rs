//! The operations port (HTTP, separate from the voice port): Prometheus
//! metrics, the JSON history API and the live dashboard.
//!
//! Everything here reads what the relay already keeps — counters, the
//! groups' shared state, the call log — and never sits on the voice path: a
//! slow scraper or a browser left open on a wall screen costs the terminals
//! nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::relay::Shared;

mod admin;
mod api;
mod dashboard;
mod prometheus;

/// The ops HTTP routes over the relay's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(prometheus::routes())
        .merge(api::routes())
        .merge(admin::routes())
        .merge(dashboard::routes())
        .with_state(shared)
}

/// Binds the ops port before the relay starts, so a taken port is a start-up
/// error rather than a silent gap in monitoring.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Serves `router` on `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "ops server stopped");
    }
}
