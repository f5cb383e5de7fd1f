//! Pages and scripts compiled into the binary (the dashboard's, the
//! console's), served as they are.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// An embedded file under the page's Content-Security-Policy `csp`;
/// revalidated on every load, so an upgraded relay serves its new page at
/// once.
pub(crate) fn embedded(
    content_type: &'static str,
    csp: &'static str,
    body: &'static str,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        body,
    )
        .into_response()
}
