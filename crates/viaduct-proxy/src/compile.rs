//! The compiler: merged dynamic configuration in, immutable [`Snapshot`] out.
//!
//! Errors are local. A router with a bad rule, a missing service or an unsupported
//! middleware is left out of the tables and reported; a service that cannot be built takes
//! down only the routers that use it; everything else serves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use viaduct_config::{DynamicConfig, HttpConfig, Service};
use viaduct_rules::{effective_priority, HttpRule, RouterEntry, RouterTable, RuleSyntax};
use viaduct_upstream::{
    InternalService, LoadBalancer, Server, ServiceNode, Transport, TransportSettings, Weighted,
};

use crate::entrypoint::Protocol;
use crate::snapshot::{EntryPointRoutes, Route, Snapshot};

/// Static facts the compiler needs: the entry points (in [`crate::EntryPointRuntime::index`]
/// order) and the default servers transport.
#[derive(Debug, Clone)]
pub struct CompileContext {
    pub entry_points: Vec<EntryPointInfo>,
    pub default_transport: TransportSettings,
}

#[derive(Debug, Clone)]
pub struct EntryPointInfo {
    pub name: String,
    pub as_default: bool,
    pub protocol: Protocol,
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

const DEFAULT_TRANSPORT: &str = "default@internal";

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
        built: HashMap::new(),
        in_progress: HashSet::new(),
    };
    for name in http.services.keys() {
        if let Err(message) = services.build(name) {
            status.error(format!("http.services.{name}"), message);
        }
    }

    let mut tables: Vec<Vec<TableEntry>> = ctx.entry_points.iter().map(|_| Vec::new()).collect();
    for (name, router) in &http.routers {
        let object = format!("http.routers.{name}");
        match compile_router(name, router, ctx, &mut services, &mut status) {
            Ok((rule, priority, entry_points, route)) => {
                for index in entry_points {
                    tables[index].push(RouterEntry {
                        rule: rule.clone(),
                        priority,
                        tiebreak: tie_break(name),
                        value: route.clone(),
                    });
                }
            }
            Err(message) => status.error(object, message),
        }
    }

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

    Snapshot {
        generation,
        entry_points: tables
            .into_iter()
            .map(|entries| EntryPointRoutes {
                routers: RouterTable::new(entries),
            })
            .collect(),
        services: built,
        transports,
        status,
    }
}

fn tie_break(name: &str) -> TieBreak {
    let provider = name.rsplit_once('@').map(|(_, p)| p).unwrap_or("");
    let rank = PROVIDER_PRECEDENCE
        .iter()
        .position(|p| p.eq_ignore_ascii_case(provider))
        .unwrap_or(PROVIDER_PRECEDENCE.len());
    (rank, name.to_string())
}

/// Priority ties are broken by provider precedence, then by name.
type TieBreak = (usize, String);
type TableEntry = RouterEntry<TieBreak, Arc<Route>>;

type CompiledRouter = (HttpRule, i64, Vec<usize>, Arc<Route>);

fn compile_router(
    name: &str,
    router: &viaduct_config::Router,
    ctx: &CompileContext,
    services: &mut ServiceBuilder<'_>,
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
    let priority =
        effective_priority(router.priority, rule.default_priority()).map_err(|e| e.to_string())?;
    if !router.middlewares.is_empty() {
        return Err(format!(
            "middlewares ({}) are not supported yet; the router is not served rather than served without them",
            router.middlewares.join(", ")
        ));
    }
    if router.tls.is_some() {
        return Err("TLS routers are not supported yet".into());
    }
    if router.service.is_empty() {
        return Err("no service is set".into());
    }
    let service = services
        .build(&router.service)
        .map_err(|e| format!("service {:?}: {e}", router.service))?;

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

    let route = Arc::new(Route {
        router: name.to_string(),
        service,
    });
    Ok((rule, priority, entry_points, route))
}

fn indexes(ctx: &CompileContext, pick: impl Fn(&EntryPointInfo) -> bool) -> Vec<usize> {
    ctx.entry_points
        .iter()
        .enumerate()
        .filter(|(_, ep)| pick(ep))
        .map(|(i, _)| i)
        .collect()
}

fn build_transports(
    http: &HttpConfig,
    ctx: &CompileContext,
    previous: Option<&Snapshot>,
    status: &mut ObjectStatus,
) -> HashMap<String, Arc<Transport>> {
    let mut wanted: Vec<(String, TransportSettings)> =
        vec![(DEFAULT_TRANSPORT.to_string(), ctx.default_transport.clone())];
    for (name, config) in &http.servers_transports {
        wanted.push((name.clone(), TransportSettings::from_dynamic(config)));
    }
    let mut out = HashMap::new();
    for (name, settings) in wanted {
        let reused = previous
            .and_then(|p| p.transports.get(&name))
            .filter(|t| t.settings() == &settings)
            .cloned();
        let transport = match reused {
            Some(t) => t,
            None => match Transport::new(settings) {
                Ok(t) => Arc::new(t),
                Err(e) => {
                    status.error(format!("http.serversTransports.{name}"), e.to_string());
                    continue;
                }
            },
        };
        out.insert(name, transport);
    }
    out
}

/// Builds services on demand, memoised, refusing reference cycles.
struct ServiceBuilder<'a> {
    definitions: &'a BTreeMap<String, Service>,
    transports: &'a HashMap<String, Arc<Transport>>,
    built: HashMap<String, Result<Arc<ServiceNode>, String>>,
    in_progress: HashSet<String>,
}

impl ServiceBuilder<'_> {
    fn build(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        if let Some(done) = self.built.get(name) {
            return done.clone();
        }
        if !self.in_progress.insert(name.to_string()) {
            return Err(format!("service {name:?} is part of a reference cycle"));
        }
        let result = self.build_uncached(name);
        self.in_progress.remove(name);
        self.built.insert(name.to_string(), result.clone());
        result
    }

    fn build_uncached(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        if let Some(internal) = name.strip_suffix("@internal") {
            return match internal {
                "whoami" => Ok(Arc::new(ServiceNode::Internal(InternalService::Whoami))),
                "noop" => Ok(Arc::new(ServiceNode::Internal(InternalService::Noop))),
                other => Err(format!(
                    "the internal service {other:?} is not available yet"
                )),
            };
        }
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| format!("the service {name:?} does not exist"))?;
        let kinds = [
            definition.load_balancer.is_some(),
            definition.weighted.is_some(),
            definition.mirroring.is_some(),
            definition.failover.is_some(),
            definition.highest_random_weight.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => return Err("the service defines no kind (loadBalancer, weighted, …)".into()),
            1 => {}
            _ => return Err("the service defines more than one kind".into()),
        }
        if !definition.middlewares.is_empty() {
            return Err("service middlewares are not supported yet".into());
        }
        if let Some(lb) = &definition.load_balancer {
            return self.load_balancer(name, lb);
        }
        if let Some(weighted) = &definition.weighted {
            let mut children = Vec::new();
            for child in &weighted.services {
                let weight = weight_of(child.weight)
                    .map_err(|e| format!("service {:?}: {e}", child.name))?;
                let node = self.build(&child.name)?;
                children.push((node, weight));
            }
            if weighted.sticky.is_some() {
                tracing::warn!(
                    service = name,
                    "sticky sessions are not supported yet; ignored"
                );
            }
            return Ok(Arc::new(ServiceNode::Weighted(Weighted::new(
                name.to_string(),
                children,
            ))));
        }
        Err("mirroring, failover and highestRandomWeight services are not supported yet".into())
    }

    fn load_balancer(
        &mut self,
        name: &str,
        lb: &viaduct_config::LoadBalancer,
    ) -> Result<Arc<ServiceNode>, String> {
        let mut servers = Vec::with_capacity(lb.servers.len());
        for (i, server) in lb.servers.iter().enumerate() {
            let weight = weight_of(server.weight).map_err(|e| format!("servers[{i}]: {e}"))?;
            if server.url.is_empty() {
                return Err(format!("servers[{i}]: the url is empty"));
            }
            servers.push(
                Server::parse(&server.url, weight, server.preserve_path)
                    .map_err(|e| e.to_string())?,
            );
        }
        let transport_name = lb.servers_transport.as_deref().unwrap_or(DEFAULT_TRANSPORT);
        let transport = self
            .transports
            .get(transport_name)
            .cloned()
            .ok_or_else(|| format!("the servers transport {transport_name:?} does not exist"))?;
        for (feature, set) in [
            ("healthCheck", lb.health_check.is_some()),
            ("passiveHealthCheck", lb.passive_health_check.is_some()),
            ("sticky", lb.sticky.is_some()),
        ] {
            if set {
                tracing::warn!(service = name, feature, "not supported yet; ignored");
            }
        }
        if let Some(strategy) = lb
            .strategy
            .as_deref()
            .filter(|s| !s.eq_ignore_ascii_case("wrr"))
        {
            tracing::warn!(
                service = name,
                strategy,
                "strategy not supported yet; using wrr"
            );
        }
        Ok(Arc::new(ServiceNode::LoadBalancer(LoadBalancer::new(
            name.to_string(),
            servers,
            lb.pass_host_header,
            transport,
        ))))
    }
}

fn weight_of(weight: Option<i64>) -> Result<u64, String> {
    match weight {
        None => Ok(1),
        Some(w) => u64::try_from(w).map_err(|_| format!("weight {w} is negative")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use viaduct_config::{parse_document, Format, Origin};

    fn ctx(eps: &[(&str, bool)]) -> CompileContext {
        CompileContext {
            entry_points: eps
                .iter()
                .map(|(name, as_default)| EntryPointInfo {
                    name: name.to_string(),
                    as_default: *as_default,
                    protocol: Protocol::Tcp,
                })
                .collect(),
            default_transport: TransportSettings::from_static(&Default::default()),
        }
    }

    fn dynamic(yaml: &str) -> DynamicConfig {
        parse_document(yaml, Format::Yaml, Origin::Inline("test")).unwrap()
    }

    fn routers_on(snapshot: &Snapshot, ep: usize) -> Vec<String> {
        snapshot.entry_points[ep]
            .routers
            .iter()
            .map(|(_, _, r)| r.router.clone())
            .collect()
    }

    const BASE: &str = r#"
http:
  services:
    s@file:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:1"}]
"#;

    #[test]
    fn errors_stay_local() {
        let yaml = format!(
            "{BASE}  routers:\n    good@file: {{rule: \"Host(`a`)\", service: s@file}}\n    badrule@file: {{rule: \"Host(a)\", service: s@file}}\n    missing@file: {{rule: \"Host(`b`)\", service: nope@file}}\n    mw@file: {{rule: \"Host(`c`)\", service: s@file, middlewares: [auth@file]}}\n    high@file: {{rule: \"Host(`d`)\", service: s@file, priority: 9223372036854775000}}\n"
        );
        let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
        assert_eq!(routers_on(&snapshot, 0), vec!["good@file".to_string()]);
        for bad in ["badrule@file", "missing@file", "mw@file", "high@file"] {
            assert!(
                snapshot
                    .status
                    .errors
                    .contains_key(&format!("http.routers.{bad}")),
                "{bad} should be reported: {:?}",
                snapshot.status.errors
            );
        }
    }

    #[test]
    fn weighted_cycles_are_refused() {
        let yaml = r#"
http:
  routers:
    r@file: {rule: "PathPrefix(`/`)", service: a@file}
  services:
    a@file:
      weighted:
        services: [{name: b@file}]
    b@file:
      weighted:
        services: [{name: a@file}]
"#;
        let snapshot = compile(&dynamic(yaml), &ctx(&[("web", false)]), None, 1);
        assert!(routers_on(&snapshot, 0).is_empty());
        let message = &snapshot.status.errors["http.routers.r@file"][0];
        assert!(message.contains("cycle"), "{message}");
    }

    #[test]
    fn default_entry_points() {
        let yaml = format!(
            "{BASE}  routers:\n    r@file: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n"
        );
        // No entry point flagged asDefault: every TCP entry point but `traefik`.
        let snapshot = compile(
            &dynamic(&yaml),
            &ctx(&[("web", false), ("traefik", false), ("other", false)]),
            None,
            1,
        );
        assert_eq!(routers_on(&snapshot, 0).len(), 1);
        assert!(routers_on(&snapshot, 1).is_empty());
        assert_eq!(routers_on(&snapshot, 2).len(), 1);
        // With asDefault, only those.
        let snapshot = compile(
            &dynamic(&yaml),
            &ctx(&[("web", false), ("main", true)]),
            None,
            1,
        );
        assert!(routers_on(&snapshot, 0).is_empty());
        assert_eq!(routers_on(&snapshot, 1).len(), 1);
    }

    #[test]
    fn unknown_entry_point_is_a_warning_when_others_exist() {
        let yaml = format!(
            "{BASE}  routers:\n    r@file: {{rule: \"PathPrefix(`/`)\", service: s@file, entryPoints: [web, nope]}}\n    z@file: {{rule: \"PathPrefix(`/`)\", service: s@file, entryPoints: [nope]}}\n"
        );
        let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
        assert_eq!(routers_on(&snapshot, 0), vec!["r@file".to_string()]);
        assert!(snapshot.status.warnings.contains_key("http.routers.r@file"));
        assert!(snapshot.status.errors.contains_key("http.routers.z@file"));
    }

    #[test]
    fn equal_priorities_follow_provider_precedence() {
        let yaml = format!(
            "{BASE}  routers:\n    a@file: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n    b@docker: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n    c@unknownprovider: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n"
        );
        let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
        assert_eq!(
            routers_on(&snapshot, 0),
            vec!["b@docker", "a@file", "c@unknownprovider"]
        );
    }

    #[test]
    fn transports_and_balancer_state_carry_over() {
        let yaml = format!(
            "{BASE}  routers:\n    r@file: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n"
        );
        let config = dynamic(&yaml);
        let first = compile(&config, &ctx(&[("web", false)]), None, 1);
        let second = compile(&config, &ctx(&[("web", false)]), Some(&first), 2);
        assert!(Arc::ptr_eq(
            &first.transports[DEFAULT_TRANSPORT],
            &second.transports[DEFAULT_TRANSPORT]
        ));
    }
}
