//! The `tcp` and `udp` sections: routers per entry point, services, middlewares and servers
//! transports, compiled into each entry point's [`TcpEntryPointRoutes`].
//!
//! Errors are local, as for HTTP: reported under `tcp.routers.<name>`, `tcp.services.<name>`,
//! `tcp.middlewares.<name>`, `tcp.serversTransports.<name>`, `udp.routers.<name>` and
//! `udp.services.<name>`, and only the objects depending on a broken one are left out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use viaduct_config::{DynamicConfig, TcpConfig, TcpRouter, UdpConfig};
use viaduct_rules::{effective_priority, RuleSyntax};
use viaduct_tcp::{
    qualify, HttpsClaims, RouterLifetime, TcpEntryPointRoutes, TcpMiddleware, TcpRoute,
    TcpRouterTable, TcpServiceBuilder, TcpTransport, TlsMode, UdpRoute, UdpServiceBuilder,
};
use viaduct_tls::{CertificateRequest, TlsRoute, TlsRuntime};

use super::routers::{tie_break, CompiledRouter};
use super::{CompileContext, ObjectStatus, TieBreak, DEFAULT_TRANSPORT};
use crate::entrypoint::Protocol;
use crate::snapshot::Snapshot;

/// What a compile carries to the next one: middleware state and router lifetimes by name.
#[derive(Default)]
pub struct TcpState {
    middlewares: HashMap<String, Arc<TcpMiddleware>>,
    lifetimes: HashMap<String, Arc<RouterLifetime>>,
}

/// The server names each entry point's HTTPS routers claim (index = entry point).
pub(super) fn https_claims(compiled: &[CompiledRouter], entry_points: usize) -> Vec<HttpsClaims> {
    let mut claims = vec![HttpsClaims::default(); entry_points];
    for router in compiled {
        for placement in &router.placements {
            let Some(tls) = &placement.tls else { continue };
            let claim = &mut claims[placement.entry_point];
            if tls.hosts.is_empty() {
                claim.catch_all = true;
            }
            for host in &tls.hosts {
                match host.strip_prefix("*.") {
                    Some(suffix) => claim.wildcard_suffixes.push(suffix.to_string()),
                    None => claim.exact.push(host.to_ascii_lowercase()),
                }
            }
        }
    }
    claims
}

/// The TLS options TCP routers that terminate TLS ask for, by the server names of their
/// `HostSNI` matchers (Traefik applies a TCP router's options only when its rule names hosts).
pub(super) fn tls_routes(config: &DynamicConfig) -> Vec<TlsRoute> {
    let Some(tcp) = &config.tcp else {
        return Vec::new();
    };
    tcp.routers
        .values()
        .filter_map(|router| {
            let tls = router.tls.as_ref()?;
            if tls.passthrough || tls.options.is_empty() {
                return None;
            }
            let hosts = sni_hosts(&router.rule);
            (!hosts.is_empty()).then(|| TlsRoute {
                hosts,
                options: tls.options.clone(),
            })
        })
        .collect()
}

/// What TCP routers with a `tls.certResolver` that terminate TLS ask their resolver for: one
/// certificate per `tls.domains` entry, else one for the exact hosts of their `HostSNI`
/// matchers (the first is the main domain), as for HTTPS routers.
pub(super) fn certificate_requests(config: &DynamicConfig) -> Vec<CertificateRequest> {
    let Some(tcp) = &config.tcp else {
        return Vec::new();
    };
    let mut requests = Vec::new();
    for router in tcp.routers.values() {
        let Some(tls) = router.tls.as_ref() else {
            continue;
        };
        if tls.passthrough || tls.cert_resolver.is_empty() {
            continue;
        }
        let request = |main: &str, sans: &[String]| CertificateRequest {
            resolver: tls.cert_resolver.clone(),
            main: main.to_ascii_lowercase(),
            sans: sans.iter().map(|s| s.to_ascii_lowercase()).collect(),
        };
        if !tls.domains.is_empty() {
            requests.extend(
                tls.domains
                    .iter()
                    .filter(|d| !d.main.is_empty())
                    .map(|d| request(&d.main, &d.sans)),
            );
            continue;
        }
        let hosts: Vec<String> = sni_hosts(&router.rule)
            .into_iter()
            .filter(|h| !h.starts_with("*."))
            .collect();
        if let Some((main, sans)) = hosts.split_first() {
            requests.push(request(main, sans));
        }
    }
    requests
}

/// Compiles the TCP and UDP sections. The result has one entry per entry point; `None` when the
/// entry point has neither TCP nor UDP routers (its connections then skip the TCP side).
pub(super) fn compile_tcp(
    config: &DynamicConfig,
    ctx: &CompileContext,
    previous: Option<&Snapshot>,
    claims: Vec<HttpsClaims>,
    tls: &TlsRuntime,
    status: &mut ObjectStatus,
) -> (Vec<Option<Arc<TcpEntryPointRoutes>>>, TcpState) {
    let empty_tcp = TcpConfig::default();
    let empty_udp = UdpConfig::default();
    let tcp = config.tcp.as_ref().unwrap_or(&empty_tcp);
    let udp = config.udp.as_ref().unwrap_or(&empty_udp);
    let old = previous.map(|p| &p.tcp_state);
    let count = ctx.entry_points.len();

    let default_transport = Arc::new(TcpTransport::from_defaults(&ctx.tcp_transport));
    let mut transports = HashMap::new();
    transports.insert(DEFAULT_TRANSPORT.to_string(), default_transport.clone());
    for (name, definition) in &tcp.servers_transports {
        match TcpTransport::from_config(definition, &ctx.tcp_transport) {
            Ok(t) => {
                transports.insert(name.clone(), Arc::new(t));
            }
            Err(e) => status.error(format!("tcp.serversTransports.{name}"), e.to_string()),
        }
    }
    let mut services = TcpServiceBuilder::new(&tcp.services, &transports, &default_transport);
    for name in tcp.services.keys() {
        if let Err(message) = services.build(name) {
            status.error(format!("tcp.services.{name}"), message);
        }
    }

    let mut state = TcpState::default();
    for (name, definition) in &tcp.middlewares {
        let before = old.and_then(|o| o.middlewares.get(name)).map(Arc::as_ref);
        match TcpMiddleware::from_config(definition, before) {
            Ok(m) => {
                state.middlewares.insert(name.clone(), Arc::new(m));
            }
            Err(message) => status.error(format!("tcp.middlewares.{name}"), message),
        }
    }

    let mut plain: Vec<Vec<(TieBreak, Arc<TcpRoute>)>> = vec![Vec::new(); count];
    let mut secure: Vec<Vec<(TieBreak, Arc<TcpRoute>)>> = vec![Vec::new(); count];
    for (name, router) in &tcp.routers {
        let object = format!("tcp.routers.{name}");
        let compiled = compile_router(
            name,
            router,
            ctx,
            tls,
            &mut services,
            &state.middlewares,
            status,
        );
        let (route, entry_points) = match compiled {
            Ok(c) => c,
            Err(message) => {
                status.error(object, message);
                continue;
            }
        };
        let lifetime = old
            .and_then(|o| o.lifetimes.get(name).cloned())
            .unwrap_or_else(RouterLifetime::new);
        state.lifetimes.insert(name.clone(), lifetime.clone());
        let route = Arc::new(TcpRoute { lifetime, ..route });
        let tables = if route.tls == TlsMode::None {
            &mut plain
        } else {
            &mut secure
        };
        for index in entry_points {
            tables[index].push((tie_break(name), route.clone()));
        }
    }

    let udp_routes = compile_udp(udp, ctx, &transports, &default_transport, status);
    let routes = plain
        .into_iter()
        .zip(secure)
        .zip(claims)
        .zip(udp_routes)
        .map(|(((plain, secure), https), udp)| {
            if plain.is_empty() && secure.is_empty() && udp.is_none() {
                return None;
            }
            Some(Arc::new(TcpEntryPointRoutes {
                plain: TcpRouterTable::new(plain),
                tls: TcpRouterTable::new(secure),
                https,
                udp,
            }))
        })
        .collect();
    (routes, state)
}

/// A compiled router (its lifetime still to be set) and its entry points.
fn compile_router(
    name: &str,
    router: &TcpRouter,
    ctx: &CompileContext,
    tls: &TlsRuntime,
    services: &mut TcpServiceBuilder<'_>,
    middlewares: &HashMap<String, Arc<TcpMiddleware>>,
    status: &mut ObjectStatus,
) -> Result<(TcpRoute, Vec<usize>), String> {
    let object = format!("tcp.routers.{name}");
    if router.rule.trim().is_empty() {
        return Err("the rule is empty".into());
    }
    let syntax = match router.rule_syntax.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<RuleSyntax>().map_err(|e| e.to_string())?,
        None => RuleSyntax::V3,
    };
    let rule = viaduct_rules::parse_tcp_with(syntax, &router.rule)
        .map_err(|e| format!("invalid rule: {e}"))?;
    let priority =
        effective_priority(router.priority, rule.default_priority()).map_err(|e| e.to_string())?;
    let mode = match &router.tls {
        None => {
            if names_a_server(&router.rule) {
                return Err(
                    "a router without tls cannot match server names: only HostSNI(`*`) is allowed"
                        .into(),
                );
            }
            TlsMode::None
        }
        Some(t) if t.passthrough => TlsMode::Passthrough,
        Some(t) => {
            if !tls.has_options(&t.options) {
                return Err(format!(
                    "TLS options {:?} do not exist or are invalid",
                    t.options
                ));
            }
            TlsMode::Terminate {
                options: t.options.clone(),
            }
        }
    };
    if router.service.is_empty() {
        return Err("no service is set".into());
    }
    let service_name = qualify(name, &router.service);
    let service = services
        .build(&service_name)
        .map_err(|e| format!("service {service_name:?}: {e}"))?;
    let mut chain = Vec::with_capacity(router.middlewares.len());
    for reference in &router.middlewares {
        let qualified = qualify(name, reference);
        let middleware = middlewares
            .get(&qualified)
            .ok_or_else(|| format!("the middleware {qualified:?} does not exist or is invalid"))?;
        chain.push(middleware.clone());
    }
    let entry_points = entry_points(&object, &router.entry_points, Protocol::Tcp, ctx, status)?;
    let route = TcpRoute {
        name: name.to_string(),
        rule,
        priority,
        tls: mode,
        service,
        middlewares: chain,
        lifetime: RouterLifetime::new(),
    };
    Ok((route, entry_points))
}

/// One UDP router per UDP entry point (the first by name; the others are reported).
fn compile_udp(
    udp: &UdpConfig,
    ctx: &CompileContext,
    transports: &HashMap<String, Arc<TcpTransport>>,
    default_transport: &Arc<TcpTransport>,
    status: &mut ObjectStatus,
) -> Vec<Option<Arc<UdpRoute>>> {
    let mut services = UdpServiceBuilder::new(&udp.services, transports, default_transport);
    for name in udp.services.keys() {
        if let Err(message) = services.build(name) {
            status.error(format!("udp.services.{name}"), message);
        }
    }
    let mut routes: Vec<Option<Arc<UdpRoute>>> = vec![None; ctx.entry_points.len()];
    let mut owners: BTreeMap<usize, &str> = BTreeMap::new();
    for (name, router) in &udp.routers {
        let object = format!("udp.routers.{name}");
        let service_name = qualify(name, &router.service);
        let service = match services.build(&service_name) {
            Ok(s) => s,
            Err(e) => {
                status.error(object, format!("service {service_name:?}: {e}"));
                continue;
            }
        };
        let entry_points =
            match entry_points(&object, &router.entry_points, Protocol::Udp, ctx, status) {
                Ok(e) => e,
                Err(message) => {
                    status.error(object, message);
                    continue;
                }
            };
        let route = Arc::new(UdpRoute {
            name: name.clone(),
            service,
        });
        for index in entry_points {
            match owners.get(&index) {
                Some(owner) => status.error(
                    object.clone(),
                    format!(
                        "the UDP router {owner:?} already serves entry point {:?}",
                        ctx.entry_points[index].name
                    ),
                ),
                None => {
                    owners.insert(index, name);
                    routes[index] = Some(route.clone());
                }
            }
        }
    }
    routes
}

/// The entry points a router is placed on. Without a list: TCP routers go to the `asDefault`
/// TCP entry points (or all TCP ones but `traefik`), UDP routers to every UDP entry point.
fn entry_points(
    object: &str,
    wanted: &[String],
    protocol: Protocol,
    ctx: &CompileContext,
    status: &mut ObjectStatus,
) -> Result<Vec<usize>, String> {
    let pick = |keep: &dyn Fn(&super::EntryPointInfo) -> bool| -> Vec<usize> {
        ctx.entry_points
            .iter()
            .enumerate()
            .filter(|(_, ep)| keep(ep))
            .map(|(i, _)| i)
            .collect()
    };
    if wanted.is_empty() {
        if protocol == Protocol::Udp {
            return Ok(pick(&|ep| ep.protocol == Protocol::Udp));
        }
        let flagged = pick(&|ep| ep.as_default && ep.protocol == Protocol::Tcp);
        if !flagged.is_empty() {
            return Ok(flagged);
        }
        return Ok(pick(&|ep| {
            ep.protocol == Protocol::Tcp && ep.name != "traefik"
        }));
    }
    let mut found = Vec::new();
    for name in wanted {
        match ctx.entry_points.iter().position(|ep| &ep.name == name) {
            Some(i) if ctx.entry_points[i].protocol == protocol => found.push(i),
            Some(_) => status.warn(
                object.to_string(),
                format!("entry point {name:?} has the wrong protocol for this router"),
            ),
            None => status.warn(
                object.to_string(),
                format!("entry point {name:?} does not exist"),
            ),
        }
    }
    if found.is_empty() {
        return Err("none of its entry points exist".into());
    }
    Ok(found)
}

/// Whether a rule names a server (any `HostSNI` but the catch-all, or `HostSNIRegexp`), which
/// only TLS routers can match.
fn names_a_server(rule: &str) -> bool {
    let lowered = rule.to_ascii_lowercase();
    let rest = ["hostsni(`*`)", "hostsni(\"*\")"]
        .iter()
        .fold(lowered, |text, catch_all| text.replace(catch_all, ""));
    rest.contains("hostsni")
}

/// The arguments of a rule's `HostSNI` matchers (lower-cased, trailing dot dropped), except
/// the catch-all.
pub(super) fn sni_hosts(rule: &str) -> Vec<String> {
    let lowered = rule.to_ascii_lowercase();
    let mut hosts = Vec::new();
    let mut rest = lowered.as_str();
    while let Some(at) = rest.find("hostsni(") {
        rest = &rest[at + "hostsni(".len()..];
        let Some(quote) = rest.chars().next().filter(|c| matches!(c, '`' | '"')) else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else {
            break;
        };
        let host = rest[1..1 + end].trim_end_matches('.');
        if host != "*" && !host.is_empty() {
            hosts.push(host.to_string());
        }
        rest = &rest[1 + end..];
    }
    hosts
}
