//! The live dashboard: one page served by the relay itself at `/` on the ops
//! port, kept current by server-sent events from `/api/v1/live`.
//!
//! The page, its stylesheet and script are compiled into the binary
//! (`assets/`): a control room needs no internet access, no CDN and no
//! build step to watch its relay, and the page fetches nothing but its own
//! three files and the event stream (its Content-Security-Policy says so).
//!
//! One sampler task (started with the first viewer, stopped with the relay)
//! computes a snapshot a second and fans it out; see [`sampler`]. Each
//! event stream starts with the last five minutes of chart points
//! (`history`), then gets every `snapshot` as it is taken.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures_util::Stream;

use super::state::OpsState;
use crate::embedded::embedded;

mod history;
mod latency;
mod sampler;
mod snapshot;

/// How long a browser waits before reconnecting a broken event stream.
const RETRY: Duration = Duration::from_secs(2);

/// Nothing but the page's own files and event stream, and recordings from
/// the API: a wall screen must not depend on (or leak to) anything else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; media-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const DASHBOARD_CSS: &str = include_str!("assets/dashboard.css");
const DASHBOARD_JS: &str = include_str!("assets/dashboard.js");

/// The dashboard's routes: the page, its assets and the live event stream.
pub(super) fn routes() -> Router<Arc<OpsState>> {
    let hub = Arc::new(Hub::default());
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", DASHBOARD_CSS) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS) }),
        )
        .route(
            "/api/v1/live",
            get(move |State(shared): State<Arc<OpsState>>| live(hub.clone(), shared)),
        )
}

/// One of the page's files, under its policy.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    embedded(content_type, HeaderValue::from_static(CSP), body)
}

/// Starts the sampler with the first viewer, once per relay (each relay
/// builds its own router, so tests running several relays do not share it).
#[derive(Debug, Default)]
struct Hub {
    feed: OnceLock<sampler::Feed>,
}

impl Hub {
    fn subscribe(&self, shared: &Arc<OpsState>) -> sampler::Feed {
        self.feed
            .get_or_init(|| sampler::spawn(shared.clone()))
            .clone()
    }
}

/// Where one event stream is: it opens with the history, then the snapshot
/// the history belongs to, then every new snapshot.
enum Step {
    Start,
    Snapshot(Arc<sampler::Published>),
    Next,
}

/// `GET /api/v1/live`: the server-sent-event stream. Ends when the relay
/// shuts down (the sampler drops its sender).
async fn live(
    hub: Arc<Hub>,
    shared: Arc<OpsState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = hub.subscribe(&shared);
    let stream = futures_util::stream::unfold((feed, Step::Start), |(mut feed, step)| async {
        match step {
            Step::Start => {
                let published = feed.wait_for(Option::is_some).await.ok()?.clone()?;
                let event = Event::default()
                    .event("history")
                    .retry(RETRY)
                    .data(published.history_json());
                Some((Ok(event), (feed, Step::Snapshot(published))))
            }
            Step::Snapshot(published) => Some((Ok(snapshot(&published)), (feed, Step::Next))),
            Step::Next => {
                feed.changed().await.ok()?;
                let published = feed.borrow_and_update().clone()?;
                Some((Ok(snapshot(&published)), (feed, Step::Next)))
            }
        }
    });
    Sse::new(stream)
}

fn snapshot(published: &sampler::Published) -> Event {
    Event::default().event("snapshot").data(&published.snapshot)
}
