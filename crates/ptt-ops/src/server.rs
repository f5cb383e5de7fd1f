//! The ops port's accept loop: at most `ops-max-connections` connections at once (one
//! more is answered 503 and closed, so excess clients take no file descriptors), each
//! served as HTTP/1 under a header-read timeout (hyper's) and an idle watchdog (ours).
//!
//! Why not `axum::serve`: it sets no timer, so hyper's header-read timeout never runs and
//! a connection that sends nothing is held for ever; it has no connection cap either.
//! Hyper's header timer starts as soon as a connection waits for a request — at its
//! opening and after each answer — so it also closes idle keep-alive connections. It does
//! not run while an answer is being sent: a client that stops reading (or a body that
//! stalls) is what the watchdog closes, after `ops-idle-timeout` without a byte either
//! way. A live event stream writes a snapshot every second and is never idle.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::counters::{OpsCounters, Refusal};
use crate::limits::OpsLimits;
use crate::log_throttle::LogThrottle;
use crate::state::OpsState;
use crate::watchdog::{Activity, Watched};

/// What a connection beyond the cap gets before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 54\r\n\r\n\
{\"error\":\"the ops port has too many connections open\"}";

/// Serves `router` on `listener` under the limits of `shared` until `stop` is cancelled,
/// then lets the open connections finish their answers.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<OpsState>,
    stop: CancellationToken,
) {
    let limits = Arc::new(shared.limits.clone());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let busy = LogThrottle::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&shared, &busy, &error).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.counters.refused(Refusal::ConnectionLimit);
            if let Some(unlogged) = busy.allow(shared.relay.clock.now_ms()) {
                tracing::warn!(%peer, unlogged, max = limits.max_connections, "ops port: connection limit reached, connection refused");
            }
            // Best effort and never waiting: the answer fits in an empty socket buffer.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let (router, shared, limits, stop) =
            (router.clone(), shared.clone(), limits.clone(), stop.clone());
        connections.spawn(async move {
            let _ = stream.set_nodelay(true);
            shared.counters.connection(true);
            serve_connection(stream, peer, router, &shared.counters, &limits, stop).await;
            shared.counters.connection(false);
            drop(slot);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// An accept error: a client gone before it was accepted is nothing; anything else
/// (out of file descriptors) is warned of and waited out a little, as `axum::serve` does.
async fn accept_failed(shared: &OpsState, throttle: &LogThrottle, error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    if let Some(unlogged) = throttle.allow(shared.relay.clock.now_ms()) {
        tracing::warn!(%error, unlogged, "ops port: accept failed");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection (any byte stream, so tests can use a pipe) until it ends, times
/// out or, after `stop`, finishes its answer in progress.
pub(crate) async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    counters: &OpsCounters,
    limits: &OpsLimits,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let service = TowerToHyperService::new(WithPeer {
        router,
        peer,
        activity: activity.clone(),
    });
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let idle_until = activity.last() + limits.idle_timeout;
        tokio::select! {
            ended = connection.as_mut() => {
                // Hyper ends a connection whose headers are late with an error; one that
                // never brought a request is counted (an idle keep-alive one is not).
                if let Err(error) = ended
                    && !activity.ever_requested()
                    && error.to_string().contains("timeout")
                {
                    counters.refused(Refusal::HeaderTimeout);
                }
                return;
            }
            () = tokio::time::sleep_until(idle_until) => {
                if activity.last() + limits.idle_timeout <= tokio::time::Instant::now() {
                    counters.refused(Refusal::IdleTimeout);
                    return;
                }
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The router, with every request marked with its source address (for the token rate
/// limit, as [`ConnectInfo`]) and its connection as having brought one.
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl<B> Service<Request<B>> for WithPeer
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        self.activity.requested();
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.router.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A client that asks for a large answer and never reads it is closed once nothing
    /// has moved for the idle timeout, though its headers came in time.
    #[tokio::test]
    async fn a_client_that_stops_reading_is_closed_when_idle() {
        let router = Router::new().route("/big", get(|| async { vec![b'x'; 1 << 20] }));
        let (mut client, server) = tokio::io::duplex(4096);
        let counters = OpsCounters::default();
        let limits = OpsLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_millis(300),
            ..OpsLimits::default()
        };
        client
            .write_all(b"GET /big HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let started = Instant::now();
        let served = serve_connection(
            server,
            peer,
            router,
            &counters,
            &limits,
            CancellationToken::new(),
        );
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("closed by the watchdog");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert_eq!(counters.refusals(Refusal::IdleTimeout), 1);
        assert_eq!(counters.refusals(Refusal::HeaderTimeout), 0);
    }
}
