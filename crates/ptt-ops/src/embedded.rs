//! Pages and scripts compiled into the binary (the dashboard's, the
//! console's), served as they are.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// An embedded file under the page's Content-Security-Policy `csp`;
/// revalidated on every load, so an upgraded relay serves its new page at
/// once.
pub(crate) fn embedded(
    content_type: &'static str,
    csp: HeaderValue,
    body: &'static str,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        body,
    )
        .into_response()
}
