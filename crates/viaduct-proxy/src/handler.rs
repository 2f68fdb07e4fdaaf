//! The request path: facts → route → forward. Loads the snapshot once, takes no lock.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use viaduct_rules::{canonical_host, routing_path, sanitize_path, RequestFacts};
use viaduct_upstream::Body;

use crate::entrypoint::EntryPointRuntime;
use crate::forward;
use crate::responses;
use crate::snapshot::{Route, SnapshotHandle};

/// What every request on one connection shares.
pub(crate) struct ConnectionContext {
    pub entry_point: Arc<EntryPointRuntime>,
    pub snapshots: SnapshotHandle,
    pub peer: SocketAddr,
    pub tls: bool,
}

pub(crate) async fn handle(
    request: Request<Incoming>,
    conn: Arc<ConnectionContext>,
) -> Response<Body> {
    let (route, sanitized) = match select_route(&request, &conn) {
        Ok(found) => found,
        Err(response) => return response,
    };
    forward::forward(request, &route, &conn, sanitized).await
}

/// Matches the request against the entry point's router table. Returns the route and, when
/// path sanitisation changed the path, the path to forward instead.
fn select_route(
    request: &Request<Incoming>,
    conn: &ConnectionContext,
) -> Result<(Arc<Route>, Option<String>), Response<Body>> {
    let snapshot = conn.snapshots.load();
    let Some(table) = snapshot.entry_points.get(conn.entry_point.index) else {
        return Err(responses::not_found());
    };
    let raw_path = request.uri().path();
    let sanitized = if conn.entry_point.sanitize_path {
        sanitize_path(raw_path)
    } else {
        Cow::Borrowed(raw_path)
    };
    let path = routing_path(&sanitized).map_err(|_| responses::bad_request())?;
    let host = canonical_host(request.uri(), request.headers());
    let facts = RequestFacts {
        host: &host,
        path: &path,
        method: request.method(),
        headers: request.headers(),
        query: request.uri().query(),
        client_ip: Some(crate::entrypoint::normalize(conn.peer.ip())),
    };
    let route = table
        .routers
        .find(&facts)
        .cloned()
        .ok_or_else(responses::not_found)?;
    let rewritten = match sanitized {
        Cow::Owned(path) => Some(path),
        Cow::Borrowed(_) => None,
    };
    Ok((route, rewritten))
}
