//! The compiled, immutable configuration the request path reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use viaduct_middlewares::{Chain, StateStore};
use viaduct_rules::RouterTable;
use viaduct_tls::TlsRuntime;
use viaduct_upstream::{ServerStatus, ServiceNode, Transport};

use crate::compile::ObjectStatus;

/// One compiled configuration. Requests in flight keep the snapshot they started with alive;
/// a reload swaps in a new one without waiting for them.
pub struct Snapshot {
    pub generation: u64,
    /// Router tables indexed like the static entry points ([`crate::EntryPointRuntime::index`]).
    pub entry_points: Vec<EntryPointRoutes>,
    /// Compiled services by qualified name, kept so the next compile can carry state over.
    pub services: HashMap<String, Arc<ServiceNode>>,
    /// Servers transports by qualified name (`default@internal` included), reused across
    /// reloads when their settings are unchanged so connection pools survive.
    pub transports: HashMap<String, Arc<Transport>>,
    /// Certificates and TLS options, chosen per connection by SNI.
    pub tls: Arc<TlsRuntime>,
    /// What routers with a `tls.certResolver` ask the ACME resolvers for (sorted, without duplicates).
    pub certificate_requests: Vec<viaduct_tls::CertificateRequest>,
    /// Middleware state (rate-limit buckets, breakers…) for the next compile to carry over.
    pub middleware_state: StateStore,
    /// TCP middleware state and router lifetimes for the next compile to carry over.
    pub(crate) tcp_state: crate::compile::TcpState,
    /// What the compiler found wrong, per object (the API reports this).
    pub status: ObjectStatus,
    /// What `api@internal` serves for this configuration; `None` without the static `api`
    /// section.
    pub api: Option<Arc<viaduct_api::Api>>,
    /// Metrics, access log and ping, for the internal services.
    pub observe: Arc<viaduct_observe::Hub>,
}

impl Snapshot {
    /// Each load balancer's servers with their current status (`UP`/`DOWN`), by qualified
    /// service name, as the API reports them (Traefik's `serverStatus`).
    pub fn server_statuses(&self) -> BTreeMap<String, BTreeMap<String, ServerStatus>> {
        self.services
            .iter()
            .filter(|(_, node)| matches!(node.as_ref(), ServiceNode::LoadBalancer(_)))
            .map(|(name, node)| {
                let servers = node
                    .server_statuses()
                    .into_iter()
                    .map(|(url, status)| (url.to_string(), status))
                    .collect();
                (name.clone(), servers)
            })
            .collect()
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("entry_points", &self.entry_points)
            .field("services", &self.services.len())
            .field("status", &self.status)
            .finish()
    }
}

pub struct EntryPointRoutes {
    /// Routers for plain-HTTP connections.
    pub routers: RouterTable<Arc<Route>>,
    /// Routers for TLS connections (routers with `tls`, or on an entry point with `http.tls`).
    pub tls_routers: RouterTable<Arc<Route>>,
    /// TCP and UDP routers; `None` when the entry point has none, so that its connections
    /// skip the TCP side entirely.
    pub tcp: Option<Arc<viaduct_tcp::TcpEntryPointRoutes>>,
}

impl std::fmt::Debug for EntryPointRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryPointRoutes")
            .field("routers", &self.routers.len())
            .field("tls_routers", &self.tls_routers.len())
            .field("tcp", &self.tcp)
            .finish()
    }
}

/// What a matched router leads to.
#[derive(Debug)]
pub struct Route {
    pub router: String,
    pub service: Arc<ServiceNode>,
    /// The router's middlewares, run before the service; `None` when it has none.
    pub middlewares: Option<Chain>,
    /// Set on the routers generated for entry point redirections: answered by the proxy.
    pub redirect: Option<crate::redirect::Redirect>,
    /// The router's metric handles and names for the access log; `None` when nothing is
    /// observed.
    pub observe: Option<Arc<viaduct_observe::RouteObserver>>,
}

/// The live snapshot, shared by all entry points. Reads are wait-free.
#[derive(Debug, Clone)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>);

impl SnapshotHandle {
    pub fn new(initial: Snapshot) -> Self {
        SnapshotHandle(Arc::new(ArcSwap::from_pointee(initial)))
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.0.load()
    }

    pub fn load_full(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    pub fn store(&self, snapshot: Snapshot) {
        self.0.store(Arc::new(snapshot));
    }
}
