//! Scheme redirections (`entryPoints.X.http.redirections.entryPoint`), answered by the proxy.

use http::header::{HOST, LOCATION};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use viaduct_upstream::Body;

/// Where a redirecting route sends the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub scheme: String,
    /// `None` for the scheme's default port, which is left out of the URL.
    pub port: Option<String>,
    pub permanent: bool,
}

impl Redirect {
    /// Traefik's redirectScheme answer: 302 (307 for methods other than GET), or 301 (308)
    /// when permanent; the Location keeps the host, path and query, with the new scheme and
    /// port.
    pub fn respond<B>(&self, request: &Request<B>) -> Response<Body> {
        let status = match (self.permanent, request.method() == Method::GET) {
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
        };
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| request.headers().get(HOST).and_then(|h| h.to_str().ok()))
            .unwrap_or("");
        let mut location = String::with_capacity(host.len() + 64);
        location.push_str(&self.scheme);
        location.push_str("://");
        location.push_str(strip_port(host));
        if let Some(port) = &self.port {
            location.push(':');
            location.push_str(port);
        }
        location.push_str(
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        );
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = status;
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(LOCATION, value);
        }
        response
    }
}

/// `host:port` → `host`, keeping an IPv6 literal's brackets.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.rfind(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str, host: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, host)
            .body(())
            .unwrap()
    }

    #[test]
    fn statuses_and_locations() {
        let to_https = Redirect {
            scheme: "https".into(),
            port: None,
            permanent: true,
        };
        let r = to_https.respond(&request(Method::GET, "/a?b=1", "example.com:8000"));
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()[LOCATION], "https://example.com/a?b=1");
        let r = to_https.respond(&request(Method::POST, "/", "example.com"));
        assert_eq!(r.status(), 308);

        let temporary = Redirect {
            scheme: "https".into(),
            port: Some("8443".into()),
            permanent: false,
        };
        let r = temporary.respond(&request(Method::GET, "/x", "[::1]:8000"));
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()[LOCATION], "https://[::1]:8443/x");
        let r = temporary.respond(&request(Method::PUT, "/x", "a.test"));
        assert_eq!(r.status(), 307);
    }
}
