//! Forwarding a routed request to its backend, including protocol upgrades.

use std::fmt::Write as _;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use viaduct_upstream::{Body, InternalService, LoadBalancer, Server, Target};

use crate::forwarded::{self, ForwardFacts};
use crate::handler::ConnectionContext;
use crate::snapshot::Route;
use crate::{hop, responses, whoami};

pub(crate) async fn forward(
    request: Request<Incoming>,
    route: &Route,
    conn: &ConnectionContext,
    sanitized_path: Option<String>,
) -> Response<Body> {
    match route.service.target() {
        Target::Server { balancer, server } => {
            proxy(request, balancer, server, conn, sanitized_path).await
        }
        Target::Internal(InternalService::Whoami) => {
            let (parts, _body) = request.into_parts();
            whoami::answer(&parts, conn.peer, &conn.entry_point.hostname, &route.router)
        }
        Target::Internal(InternalService::Noop) => Response::new(Body::Empty),
        Target::Unavailable => responses::for_status(StatusCode::SERVICE_UNAVAILABLE),
    }
}

async fn proxy(
    mut request: Request<Incoming>,
    balancer: &LoadBalancer,
    server: &Server,
    conn: &ConnectionContext,
    sanitized_path: Option<String>,
) -> Response<Body> {
    // `Upgrade: h2c` asks to switch this very connection to HTTP/2; it is not forwarded.
    let upgrade = (request.version() == Version::HTTP_11)
        .then(|| hop::requested_upgrade(request.headers()))
        .flatten()
        .filter(|p| !p.as_bytes().eq_ignore_ascii_case(b"h2c"));
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));

    let (mut parts, body) = request.into_parts();
    let ep = &conn.entry_point;

    // The authority of an absolute-form (or HTTP/2) request wins over the Host header.
    if let Some(authority) = parts.uri.authority() {
        if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(header::HOST, value);
        }
    }
    hop::remove_connection_listed(&mut parts.headers, |name| {
        forwarded::is_managed(name) || ep.connection_headers.contains(name)
    });
    let websocket = upgrade
        .as_ref()
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"));
    hop::strip_hop_by_hop(&mut parts.headers, upgrade.clone());
    let host = parts.headers.get(header::HOST).cloned();
    let facts = ForwardFacts {
        peer: conn.peer.ip(),
        peer_value: &conn.peer_value,
        tls: conn.tls,
        websocket,
        host: host.as_ref(),
    };
    forwarded::rewrite(&mut parts.headers, ep, &facts);
    if !balancer.pass_host_header {
        parts
            .headers
            .insert(header::HOST, server.host_header.clone());
    }

    parts.uri = match upstream_uri(
        &parts.uri,
        server,
        sanitized_path.as_deref(),
        ep.encode_query_semicolons,
    ) {
        Some(uri) => uri,
        None => return responses::bad_request(),
    };
    parts.version = Version::HTTP_11;
    announce_empty_body(&mut parts, &body);
    let upstream_request = Request::from_parts(parts, Body::Incoming(body));

    let mut response = match balancer.transport.send_to(upstream_request, server).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(server = %server.url, status = %err.status, error = %err, "upstream request failed");
            return responses::for_status(err.status);
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let backend_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, backend_upgrade) {
                    Ok((client, backend)) => {
                        let mut client = TokioIo::new(client);
                        let mut backend = TokioIo::new(backend);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
            let (mut parts, _) = response.into_parts();
            let protocol = parts.headers.get(header::UPGRADE).cloned();
            hop::remove_connection_listed(&mut parts.headers, |_| false);
            hop::strip_hop_by_hop(&mut parts.headers, protocol);
            return Response::from_parts(parts, Body::Empty);
        }
        // A 101 nobody asked for cannot be relayed.
        return responses::for_status(StatusCode::BAD_GATEWAY);
    }

    let (mut parts, body) = response.into_parts();
    hop::remove_connection_listed(&mut parts.headers, |_| false);
    hop::strip_hop_by_hop(&mut parts.headers, None);
    Response::from_parts(parts, body)
}

/// An empty POST, PUT or PATCH is sent with `Content-Length: 0`, as Go (and so Traefik) does:
/// some backends refuse such a request without a length (411).
fn announce_empty_body(parts: &mut http::request::Parts, body: &Incoming) {
    use http_body::Body as _;
    let expects_body = matches!(
        parts.method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    );
    if expects_body
        && body.is_end_stream()
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
}

/// The backend URI: the server's scheme and authority, its path prefix (`preservePath`), the
/// request's path and query. Traefik turns `;` in the query into `&` unless
/// `encodeQuerySemicolons` is set, in which case they are sent encoded.
fn upstream_uri(
    original: &Uri,
    server: &Server,
    sanitized_path: Option<&str>,
    encode_semicolons: bool,
) -> Option<Uri> {
    let path = sanitized_path.unwrap_or_else(|| original.path());
    let path = if path.is_empty() { "/" } else { path };
    let query = original.query();
    let simple = server.path_prefix.is_none()
        && sanitized_path.is_none()
        && query.is_none_or(|q| !q.contains(';'));
    let path_and_query = if simple {
        original
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))
    } else {
        let mut s = String::with_capacity(path.len() + query.map_or(0, str::len) + 16);
        if let Some(prefix) = &server.path_prefix {
            s.push_str(prefix);
        }
        s.push_str(path);
        if let Some(q) = query {
            s.push('?');
            if encode_semicolons {
                let _ = write!(s, "{}", q.replace(';', "%3B"));
            } else {
                s.push_str(&q.replace(';', "&"));
            }
        }
        PathAndQuery::try_from(s).ok()?
    };
    Uri::builder()
        .scheme(server.scheme.clone())
        .authority(server.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_uris() {
        let server = Server::parse("http://10.0.0.1:81", 1, false).unwrap();
        let uri: Uri = "/a/b?x=1;y=2".parse().unwrap();
        assert_eq!(
            upstream_uri(&uri, &server, None, false)
                .unwrap()
                .to_string(),
            "http://10.0.0.1:81/a/b?x=1&y=2"
        );
        assert_eq!(
            upstream_uri(&uri, &server, None, true).unwrap().to_string(),
            "http://10.0.0.1:81/a/b?x=1%3By=2"
        );
        let abs: Uri = "http://example.com/p?q".parse().unwrap();
        assert_eq!(
            upstream_uri(&abs, &server, None, false)
                .unwrap()
                .to_string(),
            "http://10.0.0.1:81/p?q"
        );
        let prefixed = Server::parse("https://b:443/base/", 1, true).unwrap();
        assert_eq!(
            upstream_uri(&"/x".parse().unwrap(), &prefixed, Some("/y"), false)
                .unwrap()
                .to_string(),
            "https://b:443/base/y"
        );
    }
}
