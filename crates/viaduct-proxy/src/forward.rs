//! Forwarding a routed request to its backend, including protocol upgrades.

use std::fmt::Write as _;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use viaduct_middlewares::UpstreamFailure;
use viaduct_upstream::{Blame, Body, InternalService, LoadBalancer, Server, ServiceNode, Target};

use crate::forwarded::{self, ForwardFacts};
use crate::handler::ConnectionContext;
use crate::{hop, responses, whoami};

/// The proxy's own work on a routed request before its middlewares see it: the Host of an
/// absolute-form request, hop-by-hop headers, and the forwarded headers of the entry point
/// (`X-Forwarded-For` is appended later, when the request leaves, as Traefik does: a
/// middleware reading it, such as `ipAllowList` with `depth`, sees what the client sent).
pub(crate) fn prepare(request: &mut Request<Body>, conn: &ConnectionContext) {
    // `Upgrade: h2c` asks to switch this very connection to HTTP/2; it is not forwarded.
    let upgrade = (request.version() == Version::HTTP_11)
        .then(|| hop::requested_upgrade(request.headers()))
        .flatten()
        .filter(|p| !p.as_bytes().eq_ignore_ascii_case(b"h2c"));
    let ep = &conn.entry_point;
    // The authority of an absolute-form (or HTTP/2) request wins over the Host header.
    if let Some(value) = request
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, value);
    }
    let headers = request.headers_mut();
    hop::remove_connection_listed(headers, |name| {
        forwarded::is_managed(name) || ep.connection_headers.contains(name)
    });
    let websocket = upgrade
        .as_ref()
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"));
    hop::strip_hop_by_hop(headers, upgrade);
    let host = headers.get(header::HOST).cloned();
    let facts = ForwardFacts {
        peer: conn.peer.ip(),
        peer_value: &conn.peer_value,
        tls: conn.tls,
        websocket,
        host: host.as_ref(),
    };
    forwarded::rewrite(headers, ep, &facts);
}

/// Sends a prepared request to `service` and relays its answer.
pub(crate) async fn forward(
    request: Request<Body>,
    service: &ServiceNode,
    router: &str,
    conn: &ConnectionContext,
) -> Response<Body> {
    match service.target() {
        Target::Server { balancer, server } => proxy(request, balancer, server, conn).await,
        Target::Internal(InternalService::Whoami) => {
            let (parts, _body) = request.into_parts();
            whoami::answer(&parts, conn.peer, &conn.entry_point.hostname, router)
        }
        Target::Internal(InternalService::Noop) => Response::new(Body::Empty),
        Target::Unavailable => responses::for_status(StatusCode::SERVICE_UNAVAILABLE),
    }
}

/// Replaces the path of `uri`, keeping its query.
pub(crate) fn set_path(uri: &mut Uri, path: &str) -> Result<(), http::Error> {
    let path_and_query = match uri.query() {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}"))?,
        None => PathAndQuery::try_from(path)?,
    };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(path_and_query);
    *uri = Uri::from_parts(parts)?;
    Ok(())
}

async fn proxy(
    mut request: Request<Body>,
    balancer: &LoadBalancer,
    server: &Server,
    conn: &ConnectionContext,
) -> Response<Body> {
    // `prepare` kept `Connection: Upgrade` only for an upgrade that is to be forwarded.
    let upgrade = (request.version() == Version::HTTP_11)
        .then(|| hop::requested_upgrade(request.headers()))
        .flatten();
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));

    let (mut parts, body) = request.into_parts();
    let ep = &conn.entry_point;
    if !ep.not_append_x_forwarded_for {
        forwarded::append_forwarded_for(&mut parts.headers, &conn.peer_value);
    }
    if !balancer.pass_host_header {
        parts
            .headers
            .insert(header::HOST, server.host_header.clone());
    }

    parts.uri = match upstream_uri(&parts.uri, server, ep.encode_query_semicolons) {
        Some(uri) => uri,
        None => return responses::bad_request(),
    };
    parts.version = Version::HTTP_11;
    announce_empty_body(&mut parts, &body);
    let upstream_request = Request::from_parts(parts, body);

    let mut response = match balancer.transport.send_to(upstream_request, server).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(server = %server.url, status = %err.status, error = %err, "upstream request failed");
            let mut response = responses::for_status(err.status);
            // A client that broke its own request is no backend failure.
            if err.blame != Blame::Client {
                response.extensions_mut().insert(UpstreamFailure {
                    retryable: err.retryable,
                });
            }
            return response;
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
fn announce_empty_body(parts: &mut http::request::Parts, body: &Body) {
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
fn upstream_uri(original: &Uri, server: &Server, encode_semicolons: bool) -> Option<Uri> {
    let path = original.path();
    let path = if path.is_empty() { "/" } else { path };
    let query = original.query();
    let simple = server.path_prefix.is_none() && query.is_none_or(|q| !q.contains(';'));
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
            upstream_uri(&uri, &server, false).unwrap().to_string(),
            "http://10.0.0.1:81/a/b?x=1&y=2"
        );
        assert_eq!(
            upstream_uri(&uri, &server, true).unwrap().to_string(),
            "http://10.0.0.1:81/a/b?x=1%3By=2"
        );
        let abs: Uri = "http://example.com/p?q".parse().unwrap();
        assert_eq!(
            upstream_uri(&abs, &server, false).unwrap().to_string(),
            "http://10.0.0.1:81/p?q"
        );
        let prefixed = Server::parse("https://b:443/base/", 1, true).unwrap();
        assert_eq!(
            upstream_uri(&"/y".parse().unwrap(), &prefixed, false)
                .unwrap()
                .to_string(),
            "https://b:443/base/y"
        );
    }
}
