//! The headers `forwardAuth` sends to the authentication server: the client's (all, or those
//! of `authRequestHeaders`) less hop-by-hop ones, and `X-Forwarded-*` describing the request,
//! taken from the client only with `trustForwardHeader`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;

use crate::chain::RequestContext;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

#[derive(Debug)]
pub(crate) struct ForwardedPolicy {
    trust: bool,
    /// Empty: every header.
    allowed: Vec<HeaderName>,
}

impl ForwardedPolicy {
    pub(crate) fn new(trust: bool, allowed: &[String]) -> Result<Self, String> {
        Ok(ForwardedPolicy {
            trust,
            allowed: allowed
                .iter()
                .map(|h| crate::headers::header_name(h, "authRequestHeaders"))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The authentication request's headers for the request `parts`.
pub(crate) fn auth_request_headers(
    policy: &ForwardedPolicy,
    parts: &Parts,
    ctx: &RequestContext<'_>,
) -> HeaderMap {
    let source = &parts.headers;
    let mut headers = HeaderMap::with_capacity(source.len() + 6);
    let connection_listed: Vec<&str> = source
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let copies = |name: &HeaderName| {
        !is_hop_by_hop(name)
            && *name != header::CONTENT_LENGTH
            && *name != header::HOST
            && !connection_listed
                .iter()
                .any(|listed| listed.eq_ignore_ascii_case(name.as_str()))
            && (policy.allowed.is_empty() || policy.allowed.contains(name))
    };
    for (name, value) in source {
        if copies(name) {
            headers.append(name.clone(), value.clone());
        }
    }

    let peer = HeaderValue::from_str(&ctx.peer.ip().to_canonical().to_string()).ok();
    let forwarded_for = match (policy.trust, joined(source, &X_FORWARDED_FOR), peer) {
        (true, Some(prior), Some(peer)) => {
            let mut value = prior.into_bytes();
            value.extend_from_slice(b", ");
            value.extend_from_slice(peer.as_bytes());
            HeaderValue::from_bytes(&value).ok()
        }
        (_, _, peer) => peer,
    };
    set(&mut headers, X_FORWARDED_FOR, forwarded_for);

    let method = trusted(policy, source, &X_FORWARDED_METHOD)
        .or_else(|| HeaderValue::from_str(parts.method.as_str()).ok());
    set(&mut headers, X_FORWARDED_METHOD, method);

    let proto = trusted(policy, source, &X_FORWARDED_PROTO).unwrap_or(HeaderValue::from_static(
        if ctx.tls { "https" } else { "http" },
    ));
    set(&mut headers, X_FORWARDED_PROTO, Some(proto));

    if let Some(port) = trusted(policy, source, &X_FORWARDED_PORT) {
        headers.insert(X_FORWARDED_PORT, port);
    }

    let host = trusted(policy, source, &X_FORWARDED_HOST).or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .or_else(|| source.get(header::HOST).cloned())
    });
    set(&mut headers, X_FORWARDED_HOST, host);

    let uri = trusted(policy, source, &X_FORWARDED_URI).or_else(|| {
        parts
            .uri
            .path_and_query()
            .and_then(|pq| HeaderValue::from_str(pq.as_str()).ok())
    });
    set(&mut headers, X_FORWARDED_URI, uri);
    headers
}

/// Go's `http.CanonicalHeaderKey`: `x-auth-user` → `X-Auth-User`.
pub(crate) fn canonical_name(name: &HeaderName) -> String {
    let mut upper = true;
    name.as_str()
        .chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c };
            upper = c == '-';
            out
        })
        .collect()
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || name.as_str() == "keep-alive"
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
}

/// The client's value of `name` when forwarded headers are trusted.
fn trusted(policy: &ForwardedPolicy, source: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    if !policy.trust {
        return None;
    }
    source.get(name).filter(|v| !v.is_empty()).cloned()
}

/// Every value of `name`, joined with `, ` (Go joins the lines of a repeated header so).
fn joined(source: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = source
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: Option<HeaderValue>) {
    match value {
        Some(value) => {
            headers.insert(name, value);
        }
        None => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_as_go() {
        assert_eq!(
            canonical_name(&HeaderName::from_static("x-auth-user")),
            "X-Auth-User"
        );
        assert_eq!(
            canonical_name(&HeaderName::from_static("www-authenticate")),
            "Www-Authenticate"
        );
    }
}
