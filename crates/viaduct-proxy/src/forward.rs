//! Forwarding a routed request to its backend, including protocol upgrades.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use viaduct_middlewares::UpstreamFailure;
use viaduct_upstream::{
    full_body, Blame, Body, Failover, InternalService, LoadBalancer, Mirroring, PickContext,
    Server, ServiceNode, Target,
};

use crate::forwarded::{self, ForwardFacts};
use crate::handler::ConnectionContext;
use crate::http1::{ClientUpgrade, HandedOn};
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
    let mut set_cookies = Vec::new();
    let ctx = PickContext {
        headers: request.headers(),
        client_ip: Some(crate::entrypoint::normalize(conn.peer.ip())),
    };
    let target = service.target(&ctx, &mut set_cookies);
    let mut response = match target {
        Target::Server { balancer, server } => {
            proxy(request, balancer, server, conn, &mut set_cookies).await
        }
        Target::Internal(InternalService::Whoami) => {
            let (parts, _body) = request.into_parts();
            whoami::answer(&parts, conn.peer, &conn.entry_point.hostname, router)
        }
        Target::Internal(InternalService::Noop) => Response::new(Body::Empty),
        Target::Internal(InternalService::Api) => internal_api(&request, conn),
        Target::Internal(InternalService::Dashboard) => into_body(viaduct_api::serve_dashboard(
            request.method(),
            request.uri(),
        )),
        Target::Internal(internal @ (InternalService::Ping | InternalService::Prometheus)) => {
            crate::internal::answer(internal, conn)
        }
        // Boxed, as rare paths: inline, their futures would enlarge every request's.
        Target::Mirror(mirroring) => Box::pin(mirror(request, mirroring, router, conn)).await,
        Target::Failover(failover) => {
            Box::pin(fail_over_on_status(request, failover, router, conn)).await
        }
        Target::Unavailable => responses::for_status(StatusCode::SERVICE_UNAVAILABLE),
    };
    // The cookie is set whatever the answer, as Traefik writes it before proxying.
    for cookie in set_cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `api@internal`: answered from the current snapshot's view; server health is read live.
fn internal_api(request: &Request<Body>, conn: &ConnectionContext) -> Response<Body> {
    let snapshot = conn.snapshots.load();
    let Some(api) = &snapshot.api else {
        return responses::for_status(StatusCode::NOT_FOUND);
    };
    let servers = || {
        snapshot
            .server_statuses()
            .into_iter()
            .map(|(service, servers)| {
                let servers = servers
                    .into_iter()
                    .map(|(url, status)| (url, status.as_str()))
                    .collect();
                (service, servers)
            })
            .collect()
    };
    into_body(viaduct_api::serve_api(
        request.method(),
        request.uri(),
        api,
        &servers,
    ))
}

fn into_body(reply: viaduct_api::Reply) -> Response<Body> {
    reply.map(full_body)
}

/// [`forward`] behind a box: a mirroring service forwards again (to its main service and
/// its mirrors), and a recursive `async fn` needs the indirection.
fn forward_boxed<'a>(
    request: Request<Body>,
    service: &'a ServiceNode,
    router: &'a str,
    conn: &'a ConnectionContext,
) -> BoxFuture<'a, Response<Body>> {
    Box::pin(forward(request, service, router, conn))
}

/// Mirroring: the main service answers the client; the mirrors picked for this request get
/// copies in spawned tasks whose answers are read and dropped. A copy never delays the
/// client: at most [`viaduct_upstream::MAX_MIRROR_COPIES`] are in flight per service, and
/// beyond that copies are skipped.
async fn mirror(
    request: Request<Body>,
    mirroring: &Mirroring,
    router: &str,
    conn: &ConnectionContext,
) -> Response<Body> {
    let mirrors = mirroring.mirrors_for_next_request();
    if mirrors.is_empty() {
        return forward_boxed(request, &mirroring.main, router, conn).await;
    }
    let (parts, body) = request.into_parts();
    let (main_body, copy_body) = if mirroring.mirror_body {
        match buffer(body, mirroring.max_body_size).await {
            Buffered::Whole(bytes) => (full_body(bytes.clone()), Some(bytes)),
            Buffered::TooLarge(prefix, rest) => {
                tracing::debug!(service = %mirroring.name, "request body larger than maxBodySize: not mirrored");
                let request = Request::from_parts(parts, Body::chained(prefix, rest));
                return forward_boxed(request, &mirroring.main, router, conn).await;
            }
            Buffered::Failed(e) => {
                tracing::debug!(service = %mirroring.name, error = %e, "reading the request body to mirror failed");
                return responses::for_status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    } else {
        (body, None)
    };
    let copy_parts = copy_head(&parts, copy_body.is_some());
    let response = forward_boxed(
        Request::from_parts(parts, main_body),
        &mirroring.main,
        router,
        conn,
    )
    .await;
    for mirror in mirrors {
        let Ok(permit) = mirroring.copies.clone().try_acquire_owned() else {
            tracing::debug!(service = %mirroring.name, mirror = %mirror.name, "too many mirrored requests in flight: copy dropped");
            continue;
        };
        let copy = rebuild(
            &copy_parts,
            copy_body.clone().map_or(Body::Empty, full_body),
        );
        let node = mirror.node.clone();
        let router = router.to_string();
        let copy_conn = conn.clone();
        let name = mirror.name.clone();
        tokio::spawn(async move {
            let response = forward_boxed(copy, &node, &router, &copy_conn).await;
            let status = response.status();
            if let Err(e) = response.into_body().collect().await {
                tracing::debug!(mirror = %name, error = %e, "reading a mirror's answer failed");
            } else if status.is_server_error() {
                tracing::debug!(mirror = %name, %status, "a mirror answered with an error");
            }
            drop(permit);
        });
    }
    response
}

/// A failover with `errors`: the request goes to the main service with its body kept, and
/// is sent again to the fallback when the answer's status is listed. A body larger than
/// `maxRequestBodyBytes` cannot be replayed: 413.
async fn fail_over_on_status(
    request: Request<Body>,
    failover: &Failover,
    router: &str,
    conn: &ConnectionContext,
) -> Response<Body> {
    let Some(on_status) = &failover.on_status else {
        return forward_boxed(request, &failover.main, router, conn).await;
    };
    let (parts, body) = request.into_parts();
    let body = match buffer(body, on_status.max_body).await {
        Buffered::Whole(bytes) => bytes,
        Buffered::TooLarge(..) => {
            return responses::error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large\n")
        }
        Buffered::Failed(e) => {
            tracing::debug!(service = %failover.name, error = %e, "reading the request body to keep failed");
            return responses::bad_request();
        }
    };
    let head = copy_head(&parts, true);
    let response = forward_boxed(
        Request::from_parts(parts, full_body(body.clone())),
        &failover.main,
        router,
        conn,
    )
    .await;
    if !on_status.matches(response.status()) {
        return response;
    }
    tracing::debug!(service = %failover.name, status = %response.status(), "the main service failed: sending the request to the fallback");
    drop(response);
    forward_boxed(
        rebuild(&head, full_body(body)),
        &failover.fallback,
        router,
        conn,
    )
    .await
}

/// The head of a request to send again: the request's, without a body length when the copy
/// has no body (`mirrorBody: false`).
fn copy_head(parts: &http::request::Parts, with_body: bool) -> http::request::Parts {
    let mut request = Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    if !with_body {
        request.headers_mut().remove(header::CONTENT_LENGTH);
        request.headers_mut().remove(header::TRANSFER_ENCODING);
    }
    request.into_parts().0
}

fn rebuild(head: &http::request::Parts, body: Body) -> Request<Body> {
    let mut request = Request::new(body);
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = head.uri.clone();
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers.clone();
    request
}

enum Buffered {
    Whole(Bytes),
    /// What was read before the limit was crossed, and the rest of the body.
    TooLarge(Bytes, Body),
    Failed(viaduct_upstream::BoxError),
}

/// Reads `body` into memory, up to `limit` bytes.
async fn buffer(mut body: Body, limit: Option<u64>) -> Buffered {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if limit.is_some_and(|l| buf.len() as u64 > l) {
                        return Buffered::TooLarge(buf.freeze(), body);
                    }
                }
            }
            Err(e) => return Buffered::Failed(e),
        }
    }
    Buffered::Whole(buf.freeze())
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
    set_cookies: &mut Vec<HeaderValue>,
) -> Response<Body> {
    // `prepare` kept `Connection: Upgrade` only for an upgrade that is to be forwarded.
    let upgrade = (request.version() == Version::HTTP_11)
        .then(|| hop::requested_upgrade(request.headers()))
        .flatten();
    let client_upgrade = upgrade.as_ref().map(|_| {
        match request
            .extensions_mut()
            .remove::<ClientUpgrade>()
            .and_then(|own| own.take())
        {
            Some(own) => UpgradeSource::Own(own),
            None => UpgradeSource::Hyper(hyper::upgrade::on(&mut request)),
        }
    });

    let ep = &conn.entry_point;
    // The request is changed in place: taking it apart and rebuilding it would copy it twice.
    // A `headers` middleware that emptied X-Forwarded-For asks for none at all (Go's
    // reverse proxy skips a header set to nil).
    if !ep.not_append_x_forwarded_for
        && request
            .extensions()
            .get::<viaduct_middlewares::SuppressForwardedFor>()
            .is_none()
    {
        forwarded::append_forwarded_for(request.headers_mut(), &conn.peer_value);
    }
    *request.version_mut() = Version::HTTP_11;
    announce_empty_body(&mut request);
    // A bodiless request refused at connection can go to another server: kept only for
    // balancers that asked for health checking, so the common path copies nothing.
    let mut replay = (client_upgrade.is_none()
        && balancer.retries_refused_connections()
        && http_body::Body::is_end_stream(request.body()))
    .then(|| {
        (
            request.method().clone(),
            request.uri().clone(),
            request.headers().clone(),
        )
    });
    if for_server(&mut request, balancer, server, conn).is_none() {
        return responses::bad_request();
    }

    let sent_at = ep.observer.wants_upstream().then(std::time::Instant::now);
    let mut server = server;
    // One await in a loop rather than a second call for the retry: each awaited call holds
    // its own slot in this function's future, which every request allocates.
    let (result, in_flight) = loop {
        let in_flight = balancer
            .counts_in_flight()
            .then(|| server.state.start_request());
        let result = send_counted(balancer, server, request).await;
        let retry = match (&result, replay.take()) {
            (Err(err), Some(copy)) if err.retryable && err.blame == Blame::Upstream => balancer
                .pick_excluding(server)
                .map(|other| (err, copy, other)),
            _ => None,
        };
        let Some((err, (method, uri, headers), other)) = retry else {
            break (result, in_flight);
        };
        tracing::debug!(service = %balancer.name, from = %server.url, to = %other.url, error = %err, "connection refused: sending the request to another server");
        let mut again = Request::new(Body::Empty);
        *again.method_mut() = method;
        *again.uri_mut() = uri;
        *again.headers_mut() = headers;
        if for_server(&mut again, balancer, other, conn).is_none() {
            break (result, in_flight);
        }
        // The client now sticks to the server that answered.
        if let Some(cookie) = balancer.sticky_cookie_for(server) {
            set_cookies.retain(|c| c != cookie);
        }
        if let Some(cookie) = balancer.sticky_cookie_for(other) {
            set_cookies.push(cookie.clone());
        }
        server = other;
        request = again;
    };
    let mut response = match result {
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
            tokio::spawn(tunnel(client_upgrade, backend_upgrade));
            let (mut parts, _) = response.into_parts();
            let protocol = parts.headers.get(header::UPGRADE).cloned();
            hop::remove_connection_listed(&mut parts.headers, |_| false);
            hop::strip_hop_by_hop(&mut parts.headers, protocol);
            return Response::from_parts(parts, Body::Empty);
        }
        // A 101 nobody asked for cannot be relayed.
        return responses::for_status(StatusCode::BAD_GATEWAY);
    }

    if let Some(sent_at) = sent_at {
        crate::internal::note_upstream(&mut response, server, sent_at);
    }
    hop::remove_connection_listed(response.headers_mut(), |_| false);
    hop::strip_hop_by_hop(response.headers_mut(), None);
    match in_flight {
        Some(in_flight) => response.map(|body| body.counted(in_flight)),
        None => response,
    }
}

/// Where the client side of an upgraded connection comes from: hyper's server, or ours.
enum UpgradeSource {
    Hyper(hyper::upgrade::OnUpgrade),
    Own(tokio::sync::oneshot::Receiver<HandedOn>),
}

/// Relays bytes both ways between the upgraded client and backend connections.
async fn tunnel(client: UpgradeSource, backend: hyper::upgrade::OnUpgrade) {
    let result = match client {
        UpgradeSource::Hyper(client) => match tokio::try_join!(client, backend) {
            Ok((client, backend)) => {
                copy(&mut TokioIo::new(client), &mut TokioIo::new(backend)).await;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        UpgradeSource::Own(client) => match (client.await, backend.await) {
            (Ok(mut client), Ok(backend)) => {
                copy(&mut client, &mut TokioIo::new(backend)).await;
                Ok(())
            }
            (Err(_), _) => Err("the client connection was not handed on".to_string()),
            (_, Err(e)) => Err(e.to_string()),
        },
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "upgrade failed");
    }
}

async fn copy<A, B>(a: &mut A, b: &mut B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional(a, b).await;
}

/// Makes the request what `server` must receive: its URI, and its Host unless
/// `passHostHeader`. `None` when the URI cannot be built.
fn for_server(
    request: &mut Request<Body>,
    balancer: &LoadBalancer,
    server: &Server,
    conn: &ConnectionContext,
) -> Option<()> {
    if !balancer.pass_host_header {
        request
            .headers_mut()
            .insert(header::HOST, server.host_header.clone());
    }
    *request.uri_mut() = upstream_uri(
        request.uri(),
        server,
        conn.entry_point.encode_query_semicolons,
    )?;
    *request.version_mut() = Version::HTTP_11;
    Some(())
}

/// Sends to `server`, counting the outcome for passive health checking.
async fn send_counted(
    balancer: &LoadBalancer,
    server: &Server,
    request: Request<Body>,
) -> Result<Response<Body>, viaduct_upstream::ProxyError> {
    let started = balancer.times_responses().then(std::time::Instant::now);
    let result = balancer.transport.send_to(request, server).await;
    if let (Some(started), Ok(_)) = (started, &result) {
        server.state.record_response_time(started.elapsed());
    }
    if let Some(policy) = balancer.passive() {
        // Traefik counts a failure when the backend could not be reached or answered 5xx.
        let failed = match &result {
            Ok(response) => response.status().is_server_error(),
            Err(err) => err.blame == Blame::Upstream,
        };
        let active = balancer.health_check().is_some();
        if server.state.record_outcome(failed, policy, active) {
            tracing::warn!(service = %balancer.name, url = %server.url, reason = "too many failed requests (passive health check)", "server DOWN");
            if !active {
                // The server is back when the window ends; say so then, as Traefik does.
                let (service, url, window) = (
                    balancer.name.clone(),
                    server.url.clone(),
                    policy.failure_window,
                );
                tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    tracing::info!(%service, %url, "server UP: passive health check window ended");
                });
            }
        }
    }
    result
}

/// An empty POST, PUT or PATCH is sent with `Content-Length: 0`, as Go (and so Traefik) does:
/// some backends refuse such a request without a length (411).
fn announce_empty_body(request: &mut Request<Body>) {
    use http_body::Body as _;
    let expects_body = matches!(
        *request.method(),
        http::Method::POST | http::Method::PUT | http::Method::PATCH
    );
    if expects_body
        && request.body().is_end_stream()
        && !request.headers().contains_key(header::CONTENT_LENGTH)
        && !request.headers().contains_key(header::TRANSFER_ENCODING)
    {
        request
            .headers_mut()
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
