//! What `redirectScheme` and `redirectRegex` share: a regex rewrite of the request's URL as
//! the client sent it, answered with a redirect when the URL changes.

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use regex::Regex;
use viaduct_upstream::full_body;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};

/// How the URL that the regex sees is reconstructed from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UrlSource {
    /// `redirectRegex`: the scheme from the connection only, the Host as sent.
    Raw,
    /// `redirectScheme`: the scheme also from `X-Forwarded-Proto`, the default port dropped.
    Scheme,
}

#[derive(Debug)]
pub(crate) struct Redirect {
    regex: Regex,
    replacement: String,
    permanent: bool,
    source: UrlSource,
}

/// Traefik's pattern for splitting a request URI into scheme, host, port and the rest.
/// `\w` is ASCII-only in Go, hence the explicit classes.
pub(crate) const URI_PATTERN: &str =
    r"^(https?://)?(\[[0-9A-Za-z_:.]+\]|[0-9A-Za-z_._-]+)?(:[0-9]+)?(.*)$";
const ABSOLUTE_URI: &str = r"^(https?)://(\[[0-9A-Za-z_:.]+\]|[0-9A-Za-z_._-]+)?(:[0-9]+)?(.*)$";

impl Redirect {
    pub(crate) fn new(
        pattern: &str,
        replacement: String,
        permanent: bool,
        source: UrlSource,
    ) -> Result<Redirect, String> {
        let regex = Regex::new(pattern).map_err(|e| {
            format!("option regex: {pattern:?} is not a valid regular expression: {e}")
        })?;
        Ok(Redirect {
            regex,
            replacement,
            permanent,
            source,
        })
    }

    /// The URL the client asked for: scheme, host, port and request URI.
    fn client_url(&self, request: &Request, ctx: &RequestContext<'_>) -> String {
        let host_header = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let (mut host, mut port) = match self.source {
            UrlSource::Raw => (host_header.to_string(), String::new()),
            UrlSource::Scheme => match split_host_port(host_header) {
                Some((host, port)) => (host.to_string(), format!(":{port}")),
                None => (host_header.to_string(), String::new()),
            },
        };
        let request_uri = request_uri(request);
        let mut scheme = "http";
        let mut uri = request_uri.as_str();
        let captures = if request_uri.starts_with("http") {
            absolute_uri().captures(&request_uri)
        } else {
            None
        };
        if let Some(caps) = captures {
            scheme = if caps.get(1).is_some_and(|m| m.as_str() == "https") {
                "https"
            } else {
                "http"
            };
            if let Some(h) = caps.get(2).filter(|m| !m.is_empty()) {
                host = h.as_str().to_string();
            }
            if let Some(p) = caps.get(3).filter(|m| !m.is_empty()) {
                port = p.as_str().to_string();
            }
            uri = caps.get(4).map_or("", |m| m.as_str());
        }
        if ctx.tls {
            scheme = "https";
        }
        if let UrlSource::Scheme = self.source {
            if let Some(proto) = request.headers().get("x-forwarded-proto") {
                let proto = proto.as_bytes();
                if proto.eq_ignore_ascii_case(b"http") || proto.eq_ignore_ascii_case(b"ws") {
                    scheme = "http";
                } else if proto.eq_ignore_ascii_case(b"https") || proto.eq_ignore_ascii_case(b"wss")
                {
                    scheme = "https";
                }
            }
            if (scheme == "http" && port == ":80") || (scheme == "https" && port == ":443") {
                port.clear();
            }
        }
        format!("{scheme}://{host}{port}{uri}")
    }
}

impl Middleware for Redirect {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let old = self.client_url(&request, ctx);
        if !self.regex.is_match(&old) {
            return next.run(request);
        }
        let new = self.regex.replace_all(&old, self.replacement.as_str());
        if new == old {
            return next.run(request);
        }
        let response = match HeaderValue::from_str(&new) {
            Ok(location) => moved(location, self.permanent, request.method()),
            Err(_) => crate::responses::status(StatusCode::INTERNAL_SERVER_ERROR),
        };
        Box::pin(async move { response })
    }
}

/// Traefik's redirect answer: 302/307 (301/308 when permanent), 307/308 for anything but
/// GET so that the method and body are kept; the status text as the body.
fn moved(location: HeaderValue, permanent: bool, method: &Method) -> Response {
    let get = method == Method::GET;
    let status = match (permanent, get) {
        (false, true) => StatusCode::FOUND,
        (false, false) => StatusCode::TEMPORARY_REDIRECT,
        (true, true) => StatusCode::MOVED_PERMANENTLY,
        (true, false) => StatusCode::PERMANENT_REDIRECT,
    };
    let mut response = Response::new(full_body(status.canonical_reason().unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The request target as Go's `RequestURI` holds it: absolute for an absolute-form HTTP/1.1
/// request, else path and query.
fn request_uri(request: &Request) -> String {
    let uri = request.uri();
    if request.version() < http::Version::HTTP_2 && uri.scheme().is_some() {
        return uri.to_string();
    }
    uri.path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
}

fn absolute_uri() -> &'static Regex {
    static ABSOLUTE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    ABSOLUTE.get_or_init(|| Regex::new(ABSOLUTE_URI).unwrap_or_else(|_| unreachable!()))
}

/// Go's `net.SplitHostPort`, for the forms a Host header takes: `None` without a port.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = hostport.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_and_port_as_go() {
        assert_eq!(split_host_port("a.test:80"), Some(("a.test", "80")));
        assert_eq!(split_host_port("[::1]:8080"), Some(("::1", "8080")));
        assert_eq!(split_host_port("a.test"), None);
        assert_eq!(split_host_port("[::1]"), None);
        assert_eq!(split_host_port("::1"), None);
    }
}
