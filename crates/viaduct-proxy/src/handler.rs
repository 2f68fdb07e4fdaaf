//! The request path: facts → route → forward. Loads the snapshot once, takes no lock.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use rustls::pki_types::CertificateDer;
use viaduct_middlewares::{BoxFuture, Forwarder, RequestContext};
use viaduct_rules::{canonical_host, routing_path, sanitize_path, RequestFacts};
use viaduct_upstream::{Body, ServiceNode};

use crate::entrypoint::EntryPointRuntime;
use crate::forward;
use crate::snapshot::{Route, SnapshotHandle};
use crate::{responses, validate};

/// What every request on one connection shares.
#[derive(Clone)]
pub(crate) struct ConnectionContext {
    pub entry_point: Arc<EntryPointRuntime>,
    pub snapshots: SnapshotHandle,
    pub peer: SocketAddr,
    /// The peer's IP as a header value (`X-Real-Ip`, `X-Forwarded-For`), formatted once.
    pub peer_value: http::HeaderValue,
    pub tls: bool,
    /// The client's certificate chain, when it presented one over TLS.
    pub client_certificates: Option<Arc<[CertificateDer<'static>]>>,
    /// TLS version and cipher, for the `*_requests_tls_total` metrics.
    pub tls_labels: Option<viaduct_observe::TlsLabels>,
    /// The server that parsed this connection's requests already refused what
    /// [`validate::check`] refuses (Viaduct's own HTTP/1.1 server does, while parsing).
    pub heads_checked: bool,
}

// Parameters are `mut` rather than rebound: in an async fn each rebinding is another copy of
// the request in its future.
pub(crate) async fn handle(
    mut request: Request<Body>,
    conn: Arc<ConnectionContext>,
) -> Response<Body> {
    // Observation costs one branch when neither metrics nor an access log are on.
    let Some(exchange) =
        conn.entry_point
            .observer
            .begin(&request, conn.peer, conn.tls, conn.tls_labels)
    else {
        return respond(request, &conn).await.0;
    };
    if let Some(traceparent) = exchange.traceparent() {
        request.headers_mut().insert("traceparent", traceparent);
    }
    let (response, route) = respond(request, &conn).await;
    exchange.finish(response, route.as_ref().and_then(|r| r.observe.as_ref()))
}

/// The answer, and the route that gave it (for accounting).
async fn respond(
    mut request: Request<Body>,
    conn: &ConnectionContext,
) -> (Response<Body>, Option<Arc<Route>>) {
    if !conn.heads_checked {
        if let Err(rejection) = validate::check(&request) {
            return (responses::for_status(rejection.status()), None);
        }
    }
    if let Some(answer) = crate::acme_challenge::answer(&request, conn) {
        return (answer, None);
    }
    match select_route(&request, conn) {
        Selection::Route {
            route,
            sanitized_path,
        } => {
            if let Some(redirect) = &route.redirect {
                return (redirect.respond(&request), Some(route));
            }
            let mut gone = ClientGone {
                route: &route,
                answered: false,
            };
            if let Some(path) = sanitized_path {
                if forward::set_path(request.uri_mut(), &path).is_err() {
                    gone.answered = true;
                    drop(gone);
                    return (responses::bad_request(), Some(route));
                }
            }
            forward::prepare(&mut request, conn);
            let forwarder = ConnectionForwarder {
                conn,
                router: &route.router,
            };
            let response = match &route.middlewares {
                None => forward::forward(request, &route.service, &route.router, conn).await,
                Some(chain) => {
                    let ctx = RequestContext {
                        peer: conn.peer,
                        tls: conn.tls,
                        client_certificates: conn.client_certificates.as_deref(),
                        entry_point: &conn.entry_point.name,
                        router: &route.router,
                        forwarder: &forwarder,
                    };
                    chain.run(request, &ctx, &route.service).await
                }
            };
            gone.answered = true;
            drop(gone);
            (response, Some(route))
        }
        Selection::NotFound => (responses::not_found(), None),
        Selection::BadPath => (responses::bad_request(), None),
    }
}

/// Forwards for middlewares: the end of a chain, and the services they call themselves.
struct ConnectionForwarder<'a> {
    conn: &'a ConnectionContext,
    router: &'a str,
}

impl Forwarder for ConnectionForwarder<'_> {
    fn forward<'a>(
        &'a self,
        request: http::Request<Body>,
        service: &'a ServiceNode,
    ) -> BoxFuture<'a, Response<Body>> {
        Box::pin(forward::forward(request, service, self.router, self.conn))
    }
}

enum Selection {
    /// `sanitized_path` is set when path sanitisation changed the path to forward.
    Route {
        route: Arc<Route>,
        sanitized_path: Option<String>,
    },
    NotFound,
    BadPath,
}

/// Matches the request against the entry point's router table.
fn select_route<B>(request: &Request<B>, conn: &ConnectionContext) -> Selection {
    let snapshot = conn.snapshots.load();
    let Some(tables) = snapshot.entry_points.get(conn.entry_point.index) else {
        return Selection::NotFound;
    };
    // A TLS router answers only TLS connections, and a plain one only plain connections: a
    // plain-HTTP request for a TLS router's host gets 404, as in Traefik.
    let table = if conn.tls {
        &tables.tls_routers
    } else {
        &tables.routers
    };
    let raw_path = request.uri().path();
    let sanitized = if conn.entry_point.sanitize_path {
        sanitize_path(raw_path)
    } else {
        Cow::Borrowed(raw_path)
    };
    let Ok(path) = routing_path(&sanitized) else {
        return Selection::BadPath;
    };
    let host = canonical_host(request.uri(), request.headers());
    let facts = RequestFacts {
        host: &host,
        path: &path,
        method: request.method(),
        headers: request.headers(),
        query: request.uri().query(),
        client_ip: Some(crate::entrypoint::normalize(conn.peer.ip())),
    };
    let Some(route) = table.find(&facts).cloned() else {
        return Selection::NotFound;
    };
    let sanitized_path = match sanitized {
        Cow::Owned(path) => Some(path),
        Cow::Borrowed(_) => None,
    };
    Selection::Route {
        route,
        sanitized_path,
    }
}

/// Notes a client that went away before its answer (Traefik logs these as status 499). The
/// request's future is simply dropped then, so the only place to see it is a drop guard.
struct ClientGone<'a> {
    route: &'a Route,
    answered: bool,
}

impl Drop for ClientGone<'_> {
    fn drop(&mut self) {
        if !self.answered {
            tracing::debug!(status = 499, router = %self.route.router, "client closed the connection before the response");
        }
    }
}
