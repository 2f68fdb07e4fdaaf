//! Compiled TCP and UDP routers per entry point, and what the entry point decides with them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use viaduct_rules::{TcpFacts, TcpRule};

use crate::middleware::{admit, TcpMiddleware};
use crate::relay::{relay, RelayEnd};
use crate::service::{TcpServiceNode, UdpServiceNode};

/// What a TCP router does with TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// No `tls` section: the router takes non-TLS connections (its rule is ``HostSNI(`*`)``).
    None,
    /// Viaduct terminates TLS (certificates and options as for HTTPS; `options` names the TLS
    /// options) and relays the plain stream.
    Terminate { options: String },
    /// The raw TLS stream, ClientHello included, goes to the backend.
    Passthrough,
}

/// One compiled TCP router.
pub struct TcpRoute {
    /// Qualified name (`name@provider`).
    pub name: String,
    pub rule: TcpRule,
    pub priority: i64,
    pub tls: TlsMode,
    pub service: Arc<TcpServiceNode>,
    pub middlewares: Vec<Arc<TcpMiddleware>>,
    /// Kept across reloads while the router exists (see [`RouterLifetime`]).
    pub lifetime: Arc<RouterLifetime>,
}

/// Alive as long as some snapshot serves the router: every connection routed by it watches
/// this, and is closed after a grace once it is dropped.
#[derive(Debug)]
pub struct RouterLifetime {
    alive: watch::Sender<()>,
}

/// The routers of one entry point.
#[derive(Debug, Default)]
pub struct TcpEntryPointRoutes {
    /// Routers without `tls`, by priority: they take non-TLS connections.
    pub plain: TcpRouterTable,
    /// Routers with `tls` (terminated or passthrough), by priority.
    pub tls: TcpRouterTable,
    /// Which server names HTTPS routers on this entry point claim: an HTTPS router for a
    /// specific host wins over TCP routers, as in Traefik.
    pub https: HttpsClaims,
    /// The UDP router of a UDP entry point.
    pub udp: Option<Arc<UdpRoute>>,
}

/// Routers sorted by priority (descending), then provider precedence and name.
#[derive(Debug, Default)]
pub struct TcpRouterTable {
    routes: Vec<Arc<TcpRoute>>,
}

/// The server names HTTPS routers on an entry point are restricted to.
#[derive(Debug, Default, Clone)]
pub struct HttpsClaims {
    /// Lower-cased exact host names.
    pub exact: Vec<String>,
    /// Suffixes of one-label wildcards (`example.com` for `*.example.com`).
    pub wildcard_suffixes: Vec<String>,
    /// Some HTTPS router has no host restriction.
    pub catch_all: bool,
}

/// The UDP router of an entry point.
pub struct UdpRoute {
    pub name: String,
    pub service: Arc<UdpServiceNode>,
}

/// Where a TLS connection goes, in Traefik's order.
#[derive(Debug, Clone)]
pub enum TlsDecision {
    /// A TCP router (passthrough or termination).
    Tcp(Arc<TcpRoute>),
    /// The HTTPS side (HTTP routers, or their 404).
    Https,
}

impl TcpEntryPointRoutes {
    /// Whether connections on this entry point need the TCP side at all; when not, the entry
    /// point serves HTTP exactly as without TCP routing.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.tls.is_empty()
    }

    /// Traefik serves a connection at once, without waiting for the client's first bytes,
    /// when the entry point has non-TLS TCP routers and neither TLS TCP routers nor HTTPS
    /// routers: then server-speaks-first protocols work.
    pub fn serves_without_peeking(&self) -> bool {
        !self.plain.is_empty() && self.tls.is_empty() && !self.https.any()
    }

    /// The TCP router for a TLS ClientHello, or the HTTPS side: an HTTPS router for this
    /// specific server name first, then TCP routers other than the catch-all, then HTTPS
    /// catch-all routers, then the TCP catch-all.
    pub fn route_tls(&self, facts: &TcpFacts<'_>) -> TlsDecision {
        let sni = facts.sni.unwrap_or("");
        if self.https.claims(sni) {
            return TlsDecision::Https;
        }
        let tcp = self.tls.find(facts);
        if let Some(route) = tcp.filter(|r| !r.rule.is_catch_all()) {
            return TlsDecision::Tcp(route.clone());
        }
        if self.https.catch_all {
            return TlsDecision::Https;
        }
        tcp.map_or(TlsDecision::Https, |route| TlsDecision::Tcp(route.clone()))
    }
}

impl TcpRouterTable {
    /// `routes` in any order; ties in priority are broken by `tiebreak`.
    pub fn new<K: Ord>(mut routes: Vec<(K, Arc<TcpRoute>)>) -> Self {
        routes.sort_by(|(ka, a), (kb, b)| b.priority.cmp(&a.priority).then_with(|| ka.cmp(kb)));
        TcpRouterTable {
            routes: routes.into_iter().map(|(_, r)| r).collect(),
        }
    }

    pub fn find(&self, facts: &TcpFacts<'_>) -> Option<&Arc<TcpRoute>> {
        self.routes.iter().find(|r| r.rule.matches(facts))
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<TcpRoute>> {
        self.routes.iter()
    }
}

impl HttpsClaims {
    pub fn any(&self) -> bool {
        self.catch_all || !self.exact.is_empty() || !self.wildcard_suffixes.is_empty()
    }

    fn claims(&self, sni: &str) -> bool {
        if sni.is_empty() {
            return false;
        }
        let sni = sni.trim_end_matches('.').to_ascii_lowercase();
        self.exact.contains(&sni)
            || sni.split_once('.').is_some_and(|(label, rest)| {
                !label.is_empty() && self.wildcard_suffixes.iter().any(|s| s == rest)
            })
    }
}

impl RouterLifetime {
    pub fn new() -> Arc<RouterLifetime> {
        Arc::new(RouterLifetime {
            alive: watch::Sender::new(()),
        })
    }

    fn watch(&self) -> watch::Receiver<()> {
        self.alive.subscribe()
    }
}

impl std::fmt::Debug for TcpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpRoute")
            .field("name", &self.name)
            .field("rule", &self.rule.as_str())
            .field("priority", &self.priority)
            .field("tls", &self.tls)
            .finish()
    }
}

impl std::fmt::Debug for UdpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRoute")
            .field("name", &self.name)
            .finish()
    }
}

/// Relays `client` (already past any TLS termination) to a server of `route`'s service.
/// `client_addr` is the real client (from a PROXY header if any), `local_addr` the address it
/// connected to. Middlewares run first; a refused or undialable connection is closed.
pub async fn serve_route<C>(
    route: Arc<TcpRoute>,
    client: C,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let _guards = match admit(&route.middlewares, client_addr.ip()) {
        Ok(guards) => guards,
        Err(refusal) => {
            tracing::debug!(router = %route.name, "{refusal}; closing the connection");
            return;
        }
    };
    let Some((server, transport)) = route.service.pick() else {
        tracing::debug!(router = %route.name, "no TCP server is up; closing the connection");
        return;
    };
    let backend = match transport
        .dial(&server.address, server.tls, client_addr, local_addr)
        .await
    {
        Ok(backend) => backend,
        Err(e) => {
            tracing::debug!(router = %route.name, error = %e, "TCP backend unreachable; closing the connection");
            return;
        }
    };
    let alive = route.lifetime.watch();
    let termination_delay = transport.termination_delay;
    let grace = termination_delay.unwrap_or(Duration::ZERO);
    let name = route.name.clone();
    // The route is not held while relaying: a removed router must be able to go away.
    drop(route);
    if relay(client, backend, termination_delay, alive, grace).await == RelayEnd::RouterRemoved {
        tracing::debug!(router = %name, "router removed; connection closed");
    }
}
