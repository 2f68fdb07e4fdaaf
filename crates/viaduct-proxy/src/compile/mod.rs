//! The compiler: merged dynamic configuration in, immutable [`Snapshot`] out.
//!
//! Errors are local. A router with a bad rule, a missing service or an unsupported
//! middleware is left out of the tables and reported; a service that cannot be built takes
//! down only the routers that use it; everything else serves.

mod redirect;
mod routers;
mod services;
mod tcp;
#[cfg(test)]
mod tcp_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use viaduct_api::{Api, ApiInfo, EntryPointFacts, Problems, RuntimeView};
use viaduct_config::static_config::RedirectEntryPoint;
use viaduct_config::{DynamicConfig, HttpConfig, RouterTls};
use viaduct_middlewares::MiddlewareBuilder;
use viaduct_rules::{RouterEntry, RouterTable};
use viaduct_tls::{CertificateRequest, TlsRoute, TlsRuntime, TlsShared};
use viaduct_upstream::{ServiceNode, TransportSettings};

use crate::entrypoint::Protocol;
use crate::snapshot::{EntryPointRoutes, Route, Snapshot};
use routers::{compile_router, tie_break, CompiledRouter};
use services::{build_transports, ServiceBuilder};
pub(crate) use tcp::TcpState;

const DEFAULT_TRANSPORT: &str = "default@internal";

/// Static facts the compiler needs: the entry points (in [`crate::EntryPointRuntime::index`]
/// order), the default servers transport, and the TLS state that outlives snapshots.
#[derive(Clone)]
pub struct CompileContext {
    pub entry_points: Vec<EntryPointInfo>,
    pub default_transport: TransportSettings,
    pub tls: Arc<TlsShared>,
    /// The API's static facts when the static configuration has an `api` section: then
    /// `api@internal` and `dashboard@internal` exist and snapshots carry the API's view.
    pub api: Option<Arc<ApiInfo>>,
    /// Metrics registry, access log and ping: routers resolve their metric handles here.
    pub observe: Arc<viaduct_observe::Hub>,
    /// The static `tcpServersTransport`: what TCP servers transports default to.
    pub tcp_transport: viaduct_tcp::TcpTransportDefaults,
}

#[derive(Debug, Clone)]
pub struct EntryPointInfo {
    pub name: String,
    pub as_default: bool,
    pub protocol: Protocol,
    /// The port the entry point listens on (for redirections to it).
    pub port: u16,
    /// `http.tls`: TLS for the entry point's routers that set none.
    pub default_tls: Option<RouterTls>,
    /// `http.redirections.entryPoint`.
    pub redirect: Option<RedirectEntryPoint>,
}

/// Problems found while compiling, by object (`http.routers.<name>` etc.).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ObjectStatus {
    pub errors: BTreeMap<String, Vec<String>>,
    pub warnings: BTreeMap<String, Vec<String>>,
}

impl ObjectStatus {
    fn error(&mut self, object: String, message: String) {
        self.errors.entry(object).or_default().push(message);
    }

    fn warn(&mut self, object: String, message: String) {
        self.warnings.entry(object).or_default().push(message);
    }

    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.warnings.is_empty()
    }
}

/// Priority ties are broken by provider precedence, then by name.
type TieBreak = (usize, String);
type TableEntry = RouterEntry<TieBreak, Arc<Route>>;

/// Builds a snapshot from `config`. `previous` lends its transports and balancer state.
pub fn compile(
    config: &DynamicConfig,
    ctx: &CompileContext,
    previous: Option<&Snapshot>,
    generation: u64,
) -> Snapshot {
    let empty = HttpConfig::default();
    let http = config.http.as_ref().unwrap_or(&empty);
    let mut status = ObjectStatus::default();

    let transports = build_transports(http, ctx, previous, &mut status);
    let mut services = ServiceBuilder {
        definitions: &http.services,
        transports: &transports,
        api: ctx.api.is_some(),
        previous,
        built: HashMap::new(),
        in_progress: HashSet::new(),
    };
    for name in http.services.keys() {
        if let Err(message) = services.build(name) {
            status.error(format!("http.services.{name}"), message);
        }
    }

    let mut middlewares =
        MiddlewareBuilder::new(&http.middlewares, previous.map(|p| &p.middleware_state))
            .noting_users(ctx.observe.access_log.is_some());
    let mut compiled: Vec<CompiledRouter> = Vec::new();
    for (name, router) in &http.routers {
        match compile_router(
            name,
            router,
            ctx,
            &mut services,
            &mut middlewares,
            &mut status,
        ) {
            Ok(router) => compiled.push(router),
            Err(message) => status.error(format!("http.routers.{name}"), message),
        }
    }

    // The TLS configuration depends on the routers (which hosts use which options), and the
    // routers' validity on it (their options must exist).
    let tls_routes: Vec<TlsRoute> = compiled
        .iter()
        .flat_map(|r| {
            r.placements
                .iter()
                .filter_map(|p| p.tls.as_ref())
                .map(|t| TlsRoute {
                    hosts: t.hosts.clone(),
                    options: t.options.clone(),
                })
        })
        .chain(tcp::tls_routes(config))
        .collect();
    let (tls, issues) = TlsRuntime::build(config.tls.as_ref(), &tls_routes, &ctx.tls);
    for issue in issues {
        if issue.is_error {
            status.error(issue.object, issue.message);
        } else {
            status.warn(issue.object, issue.message);
        }
    }

    let claims = tcp::https_claims(&compiled, ctx.entry_points.len());
    let (tcp_routes, tcp_state) =
        tcp::compile_tcp(config, ctx, previous, claims, &tls, &mut status);

    let mut certificate_requests: Vec<CertificateRequest> = Vec::new();
    let mut http_tables: Vec<Vec<TableEntry>> =
        ctx.entry_points.iter().map(|_| Vec::new()).collect();
    let mut https_tables: Vec<Vec<TableEntry>> =
        ctx.entry_points.iter().map(|_| Vec::new()).collect();
    for router in compiled {
        let object = format!("http.routers.{}", router.name);
        let missing_options = router
            .placements
            .iter()
            .filter_map(|p| p.tls.as_ref())
            .find(|t| !tls.has_options(&t.options));
        if let Some(t) = missing_options {
            status.error(
                object,
                format!("TLS options {:?} do not exist or are invalid", t.options),
            );
            continue;
        }
        certificate_requests.extend(
            router
                .certificates
                .iter()
                .filter_map(|request| uncovered(request, &tls)),
        );
        for placement in &router.placements {
            let table = if placement.tls.is_some() {
                &mut https_tables
            } else {
                &mut http_tables
            };
            table[placement.entry_point].push(RouterEntry {
                rule: router.rule.clone(),
                priority: router.priority,
                tiebreak: tie_break(&router.name),
                value: router.route.clone(),
            });
        }
    }
    certificate_requests.extend(
        tcp::certificate_requests(config)
            .iter()
            .filter_map(|request| uncovered(request, &tls)),
    );
    certificate_requests.extend(default_generated_cert(config));
    redirect::add_entry_point_redirections(ctx, &mut http_tables, &mut status);
    for (name, message) in middlewares.check_all(&mut services) {
        status.error(format!("http.middlewares.{name}"), message);
    }
    let middleware_state = middlewares.into_state();

    let built: HashMap<String, Arc<ServiceNode>> = services
        .built
        .into_iter()
        .filter_map(|(name, result)| result.ok().map(|node| (name, node)))
        .collect();
    if let Some(previous) = previous {
        for (name, node) in &built {
            if let Some(old) = previous.services.get(name) {
                node.resume_from(old);
            }
        }
    }

    let api = ctx.api.as_ref().map(|info| {
        let entry_points: Vec<EntryPointFacts> = ctx
            .entry_points
            .iter()
            .map(|ep| EntryPointFacts {
                name: ep.name.clone(),
                as_default: ep.as_default,
                is_tcp: ep.protocol == Protocol::Tcp,
            })
            .collect();
        let problems = Problems {
            errors: &status.errors,
            warnings: &status.warnings,
        };
        Arc::new(Api {
            info: info.clone(),
            runtime: RuntimeView::build(
                &[http, &redirect::redirection_objects(ctx)],
                problems,
                &entry_points,
            )
            .with_streams(
                config.tcp.as_ref(),
                config.udp.as_ref(),
                problems,
                &entry_points,
            ),
        })
    });

    Snapshot {
        generation,
        api,
        entry_points: http_tables
            .into_iter()
            .zip(https_tables)
            .zip(tcp_routes)
            .map(|((http, https), tcp)| EntryPointRoutes {
                routers: RouterTable::new(http),
                tls_routers: RouterTable::new(https),
                tcp,
            })
            .collect(),
        services: built,
        transports,
        tls: Arc::new(tls),
        certificate_requests: {
            certificate_requests.sort();
            certificate_requests.dedup();
            certificate_requests
        },
        middleware_state,
        tcp_state,
        status,
        observe: ctx.observe.clone(),
    }
}

/// The part of `request` no `tls.certificates` entry serves (the first remaining name becomes the main domain), as
/// Traefik's ACME provider orders only unchecked domains; `None` when everything is served.
fn uncovered(request: &CertificateRequest, tls: &TlsRuntime) -> Option<CertificateRequest> {
    let mut names = std::iter::once(&request.main)
        .chain(&request.sans)
        .filter(|name| !tls.has_configured_certificate(name))
        .cloned();
    let main = names.next()?;
    Some(CertificateRequest {
        resolver: request.resolver.clone(),
        main,
        sans: names.collect(),
    })
}

/// `tls.stores.default.defaultGeneratedCert`: the default certificate, obtained by a resolver.
fn default_generated_cert(config: &DynamicConfig) -> Option<CertificateRequest> {
    let store = config.tls.as_ref()?.stores.get("default")?;
    let generated = store.default_generated_cert.as_ref()?;
    let domain = generated.domain.as_ref().filter(|d| !d.main.is_empty())?;
    if generated.resolver.is_empty() {
        return None;
    }
    Some(CertificateRequest {
        resolver: generated.resolver.clone(),
        main: domain.main.to_ascii_lowercase(),
        sans: domain.sans.iter().map(|s| s.to_ascii_lowercase()).collect(),
    })
}
