//! Answers the proxy gives itself, with Traefik's bodies and headers.

use http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Response, StatusCode};
use viaduct_upstream::{full_body, Body};

/// Go's `http.Error`: plain text, no sniffing, the message and a newline.
pub fn error(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(full_body(message));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// No router matched: Traefik's (and Go's) `404 page not found`.
pub fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "404 page not found\n")
}

pub fn bad_request() -> Response<Body> {
    error(StatusCode::BAD_REQUEST, "400 Bad Request\n")
}

/// An upstream failure, with the status text as body (Traefik's error handler).
pub fn for_status(status: StatusCode) -> Response<Body> {
    let text = match status {
        StatusCode::BAD_GATEWAY => "Bad Gateway",
        StatusCode::SERVICE_UNAVAILABLE => "no available server",
        StatusCode::GATEWAY_TIMEOUT => "Gateway Timeout",
        StatusCode::BAD_REQUEST => "Bad Request",
        StatusCode::NOT_IMPLEMENTED => "Not Implemented",
        _ => "Internal Server Error",
    };
    let mut response = Response::new(full_body(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
