//! Answers middlewares give themselves.

use http::{header, HeaderValue, StatusCode};
use viaduct_upstream::full_body;

use crate::chain::Response;

/// A plain-text answer with `status` and its reason as the body, as Go's `http.Error` writes.
pub(crate) fn status(status: StatusCode) -> Response {
    let text = format!("{}\n", status.canonical_reason().unwrap_or(""));
    let mut response = Response::new(full_body(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
