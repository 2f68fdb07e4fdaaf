//! HTTP-01: `/.well-known/acme-challenge/<token>` on a resolver's `httpChallenge.entryPoint` is answered ahead of
//! every user router, as Traefik's internal challenge router at maximum priority is.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use viaduct_upstream::{full_body, Body};

use crate::handler::ConnectionContext;
use crate::responses;

/// The answer to an HTTP-01 validation request, or `None` to route the request as usual.
pub(crate) fn answer<B>(request: &Request<B>, conn: &ConnectionContext) -> Option<Response<Body>> {
    let path = request.uri().path();
    if conn.tls || !path.starts_with(viaduct_tls::HTTP_CHALLENGE_PREFIX) {
        return None;
    }
    let snapshot = conn.snapshots.load();
    match snapshot
        .tls
        .acme()
        .http_challenge(&conn.entry_point.name, path)?
    {
        Some(key_authorization) => {
            let mut response = Response::new(full_body(key_authorization));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Some(response)
        }
        None => Some(responses::not_found()),
    }
}
