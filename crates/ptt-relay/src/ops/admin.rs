//! (being built)

use std::sync::Arc;

use axum::Router;

use crate::relay::Shared;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
