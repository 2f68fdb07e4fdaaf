//! What middlewares tell the observer about an exchange: response extensions read once when
//! the exchange finishes. Middlewares only add them when there is something to say (a retry)
//! or someone to say it to (an access log), so an unobserved request pays nothing.

use std::sync::Arc;

/// How many times the `retry` middleware sent the request again (attempts after the first):
/// the access log's `RetryAttempts` and `traefik_service_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAttempts(pub u32);

/// The user `basicAuth` or `digestAuth` read from the request's credentials (the access log's
/// `ClientUsername`). As in Traefik, it is noted whether or not the password was right, and
/// `basicAuth` notes an empty name when the request had no usable credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUsername(pub Arc<str>);

impl RetryAttempts {
    /// Notes `retries` on `response`, adding to what an inner `retry` middleware noted.
    pub fn note<B>(response: &mut http::Response<B>, retries: u32) {
        if retries == 0 {
            return;
        }
        let inner = response
            .extensions()
            .get::<RetryAttempts>()
            .map_or(0, |r| r.0);
        response
            .extensions_mut()
            .insert(RetryAttempts(inner.saturating_add(retries)));
    }
}

impl ClientUsername {
    pub fn note<B>(response: &mut http::Response<B>, user: &str) {
        response
            .extensions_mut()
            .insert(ClientUsername(Arc::from(user)));
    }
}
