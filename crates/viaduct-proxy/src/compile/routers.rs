//! Routers: rules, priorities, entry points and the route each leads to.

use std::sync::Arc;

use viaduct_middlewares::MiddlewareBuilder;
use viaduct_rules::{effective_priority, HttpRule, RuleSyntax, MAX_USER_PRIORITY};
use viaduct_tls::CertificateRequest;

use super::services::ServiceBuilder;
use super::{CompileContext, EntryPointInfo, ObjectStatus, TieBreak};
use crate::entrypoint::Protocol;
use crate::snapshot::Route;

/// The order in which providers win priority ties (Traefik 3.7's default precedence).
const PROVIDER_PRECEDENCE: &[&str] = &[
    "kubernetesgateway",
    "kubernetescrd",
    "kubernetes",
    "kubernetesingressnginx",
    "swarm",
    "docker",
    "file",
    "redis",
    "knative",
    "consul",
    "consulcatalog",
    "nomad",
    "etcd",
    "ecs",
    "http",
    "zookeeper",
    "rest",
];

pub(super) fn tie_break(name: &str) -> TieBreak {
    let provider = name.rsplit_once('@').map(|(_, p)| p).unwrap_or("");
    let rank = PROVIDER_PRECEDENCE
        .iter()
        .position(|p| p.eq_ignore_ascii_case(provider))
        .unwrap_or(PROVIDER_PRECEDENCE.len());
    (rank, name.to_string())
}

/// A router that compiled, and where it goes: one placement per entry point.
pub(super) struct CompiledRouter {
    pub name: String,
    pub rule: HttpRule,
    pub priority: i64,
    pub route: Arc<Route>,
    pub placements: Vec<Placement>,
    /// What the router asks its `tls.certResolver` for.
    pub certificates: Vec<CertificateRequest>,
}

pub(super) struct Placement {
    pub entry_point: usize,
    /// Set when the router is served over TLS on this entry point (its own `tls`, or the
    /// entry point's `http.tls`); it then answers only TLS connections.
    pub tls: Option<TlsPlacement>,
}

pub(super) struct TlsPlacement {
    /// The hosts whose TLS handshakes use `options` (from the rule's `Host` matchers).
    pub hosts: Vec<String>,
    pub options: String,
}

pub(super) fn compile_router(
    name: &str,
    router: &viaduct_config::Router,
    ctx: &CompileContext,
    services: &mut ServiceBuilder<'_>,
    middlewares: &mut MiddlewareBuilder<'_>,
    status: &mut ObjectStatus,
) -> Result<CompiledRouter, String> {
    let object = format!("http.routers.{name}");
    if router.rule.trim().is_empty() {
        return Err("the rule is empty".into());
    }
    let syntax = match router.rule_syntax.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<RuleSyntax>().map_err(|e| e.to_string())?,
        None => RuleSyntax::V3,
    };
    if syntax == RuleSyntax::V2 {
        status.warn(
            object.clone(),
            "ruleSyntax v2 is deprecated; rewrite the rule in the v3 syntax".into(),
        );
    }
    let rule = viaduct_rules::parse_http_with(syntax, &router.rule)
        .map_err(|e| format!("invalid rule: {e}"))?;
    // Traefik gives its own routers (API, dashboard, ping, metrics) priorities above any
    // user's.
    let priority = if name.ends_with("@internal") && router.priority > MAX_USER_PRIORITY {
        router.priority
    } else {
        effective_priority(router.priority, rule.default_priority()).map_err(|e| e.to_string())?
    };
    if router.service.is_empty() {
        return Err("no service is set".into());
    }
    let service = services
        .build(&router.service)
        .map_err(|e| format!("service {:?}: {e}", router.service))?;
    // A router whose middlewares cannot be built is not served: serving it without them
    // could expose what they protect.
    let middlewares = if router.middlewares.is_empty() {
        None
    } else {
        Some(middlewares.chain(&router.middlewares, services)?)
    };

    let mut entry_points = Vec::new();
    if router.entry_points.is_empty() {
        let flagged: Vec<usize> = indexes(ctx, |ep| ep.as_default && ep.protocol == Protocol::Tcp);
        entry_points = if flagged.is_empty() {
            indexes(ctx, |ep| {
                ep.protocol == Protocol::Tcp && ep.name != "traefik"
            })
        } else {
            flagged
        };
    } else {
        for wanted in &router.entry_points {
            match ctx.entry_points.iter().position(|ep| &ep.name == wanted) {
                Some(i) if ctx.entry_points[i].protocol == Protocol::Tcp => entry_points.push(i),
                Some(_) => status.warn(object.clone(), format!("entry point {wanted:?} is UDP")),
                None => status.warn(
                    object.clone(),
                    format!("entry point {wanted:?} does not exist"),
                ),
            }
        }
        if entry_points.is_empty() {
            return Err("none of its entry points exist".into());
        }
    }

    let hosts = tls_hosts(&rule);
    let mut placements = Vec::with_capacity(entry_points.len());
    let mut certificates = Vec::new();
    for index in entry_points {
        let tls = router
            .tls
            .as_ref()
            .or(ctx.entry_points[index].default_tls.as_ref());
        if let Some(tls) = tls {
            for request in certificate_requests(tls, &rule) {
                if !certificates.contains(&request) {
                    certificates.push(request);
                }
            }
        }
        placements.push(Placement {
            entry_point: index,
            tls: tls.map(|t| TlsPlacement {
                hosts: hosts.clone(),
                options: t.options.clone(),
            }),
        });
    }

    let route = Arc::new(Route {
        router: name.to_string(),
        service,
        middlewares,
        redirect: None,
        observe: viaduct_observe::RouteObserver::new(
            &ctx.observe,
            name,
            &router.service,
            switches(router),
        )
        .map(Arc::new),
    });
    Ok(CompiledRouter {
        name: name.to_string(),
        rule,
        priority,
        route,
        placements,
        certificates,
    })
}

/// The router's `observability` options (each on unless set to false).
fn switches(router: &viaduct_config::Router) -> viaduct_observe::RouterSwitches {
    let o = router.observability.as_ref();
    viaduct_observe::RouterSwitches {
        metrics: o.and_then(|o| o.metrics).unwrap_or(true),
        access_log: o.and_then(|o| o.access_logs).unwrap_or(true),
        tracing: o.and_then(|o| o.tracing).unwrap_or(true),
        trace_detailed: o
            .and_then(|o| o.trace_verbosity.as_deref())
            .is_some_and(|v| v.eq_ignore_ascii_case("detailed")),
    }
}

fn indexes(ctx: &CompileContext, pick: impl Fn(&EntryPointInfo) -> bool) -> Vec<usize> {
    ctx.entry_points
        .iter()
        .enumerate()
        .filter(|(_, ep)| pick(ep))
        .map(|(i, _)| i)
        .collect()
}

/// The hosts a router's rule is restricted to, for choosing TLS options by SNI.
fn tls_hosts(rule: &HttpRule) -> Vec<String> {
    match rule.required_hosts() {
        Some(set) => set
            .exact
            .into_iter()
            .chain(
                set.wildcard_suffixes
                    .into_iter()
                    .map(|s| format!("*.{}", s.trim_start_matches('.'))),
            )
            .collect(),
        None => Vec::new(),
    }
}

/// Traefik's domains for a router with a `certResolver`: one certificate per `tls.domains` entry, else one certificate
/// for every host its rule names (the first is the main domain).
fn certificate_requests(
    tls: &viaduct_config::RouterTls,
    rule: &HttpRule,
) -> Vec<CertificateRequest> {
    if tls.cert_resolver.is_empty() {
        return Vec::new();
    }
    let request = |main: &str, sans: Vec<String>| CertificateRequest {
        resolver: tls.cert_resolver.clone(),
        main: main.to_ascii_lowercase(),
        sans: sans.iter().map(|s| s.to_ascii_lowercase()).collect(),
    };
    if !tls.domains.is_empty() {
        return tls
            .domains
            .iter()
            .filter(|domain| !domain.main.is_empty())
            .map(|domain| request(&domain.main, domain.sans.clone()))
            .collect();
    }
    let mut hosts: Vec<String> = rule
        .required_hosts()
        .map(|set| set.exact.into_iter().collect())
        .unwrap_or_default();
    hosts.retain(|host| !host.is_empty());
    match hosts.split_first() {
        Some((main, sans)) => vec![request(main, sans.to_vec())],
        None => Vec::new(),
    }
}
