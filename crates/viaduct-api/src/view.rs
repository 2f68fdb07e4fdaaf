//! The runtime view: every router, service and middleware (HTTP, TCP, UDP) of one compiled
//! configuration with its status, errors and relations. Built once per compile, never per API call; the
//! configurations stay typed until a call shows them (`shape`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use viaduct_config::{
    HttpConfig, Middleware, Router, Service, TcpConfig, TcpMiddleware, TcpRouter, TcpService,
    UdpConfig, UdpRouter, UdpService,
};

use crate::json::{provider_of, single_kind, type_name};
use crate::{shape, streams};

/// Traefik's object status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Enabled,
    Warning,
    Disabled,
}

/// What the compiler found wrong, by object (`http.routers.<name>`, `tcp.services.<name>`,
/// `udp.routers.<name>`, …); other keys are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Problems<'a> {
    pub errors: &'a BTreeMap<String, Vec<String>>,
    pub warnings: &'a BTreeMap<String, Vec<String>>,
}

/// An entry point as routers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointFacts {
    pub name: String,
    pub as_default: bool,
    /// TCP (HTTP routers attach only to TCP entry points).
    pub is_tcp: bool,
}

/// One router, service or middleware as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    /// Qualified name (`app@file`).
    pub name: String,
    pub provider: String,
    /// The configuration as merged; [`ObjectInfo::config`] shapes it as Traefik shows it.
    pub definition: Definition,
    pub status: Status,
    /// Errors, then warnings (Traefik lists both under `error`).
    pub errors: Vec<String>,
    /// Services and middlewares: the routers that reference them, sorted.
    pub used_by: Vec<String>,
    /// Routers: the entry points they are attached to.
    pub using: Vec<String>,
    /// Routers: the entry points they ask for (the defaults when they name none).
    pub entry_points: Vec<String>,
    /// Routers: the effective priority.
    pub priority: i64,
    /// TCP services: Traefik built the service for a router and reports its servers `UP`
    /// (it has no live health for them).
    pub servers_up: bool,
}

/// An object's configuration. Kept typed: turning it into JSON is left to the API calls
/// that show it, so a reload pays only for statuses and relations.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Router(Router),
    Service(Service),
    // Boxed: a middleware definition is several times the size of the others.
    Middleware(Box<Middleware>),
    TcpRouter(TcpRouter),
    TcpService(TcpService),
    TcpMiddleware(TcpMiddleware),
    UdpRouter(UdpRouter),
    UdpService(UdpService),
}

/// Every object of one configuration, by qualified name: HTTP ones at the top, TCP and UDP
/// ones in their own sets (UDP has no middlewares).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeView {
    pub routers: BTreeMap<String, ObjectInfo>,
    pub services: BTreeMap<String, ObjectInfo>,
    pub middlewares: BTreeMap<String, ObjectInfo>,
    pub tcp: ObjectSet,
    pub udp: ObjectSet,
}

/// The routers, services and middlewares of one protocol, by qualified name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectSet {
    pub routers: BTreeMap<String, ObjectInfo>,
    pub services: BTreeMap<String, ObjectInfo>,
    pub middlewares: BTreeMap<String, ObjectInfo>,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Warning => "warning",
            Status::Disabled => "disabled",
        }
    }
}

impl ObjectInfo {
    /// The configuration as Traefik shows it: defaults filled in, empty values removed.
    pub fn config(&self) -> Map<String, Value> {
        match &self.definition {
            Definition::Router(router) => shape::router(self, router),
            Definition::Service(service) => shape::service(&self.provider, service),
            Definition::Middleware(middleware) => shape::middleware(middleware),
            Definition::TcpRouter(router) => shape::tcp_router(self, router),
            Definition::TcpService(service) => shape::tcp_service(&self.provider, service),
            Definition::TcpMiddleware(middleware) => shape::middleware(middleware),
            Definition::UdpRouter(router) => shape::udp_router(self, router),
            Definition::UdpService(service) => shape::udp_service(&self.provider, service),
        }
    }

    /// Whether the object is a router (HTTP, TCP or UDP).
    pub fn is_router(&self) -> bool {
        matches!(
            self.definition,
            Definition::Router(_) | Definition::TcpRouter(_) | Definition::UdpRouter(_)
        )
    }

    /// Traefik's `type`: `loadbalancer`, `basicauth`, …; `None` for routers and internal
    /// services.
    pub fn kind(&self) -> Option<String> {
        if self.is_router() {
            return None;
        }
        single_kind(&self.config()).map(type_name)
    }

    /// Whether the router has a priority (HTTP and TCP; UDP routers have none).
    pub fn has_priority(&self) -> bool {
        matches!(
            self.definition,
            Definition::Router(_) | Definition::TcpRouter(_)
        )
    }

    /// TCP and UDP services: their servers' addresses.
    pub fn server_addresses(&self) -> Vec<String> {
        match &self.definition {
            Definition::TcpService(service) => service
                .load_balancer
                .iter()
                .flat_map(|lb| lb.servers.iter().map(|s| s.address.clone()))
                .collect(),
            Definition::UdpService(service) => service
                .load_balancer
                .iter()
                .flat_map(|lb| lb.servers.iter().map(|s| s.address.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Routers: the rule, the (qualified) service and middlewares; empty for other objects.
    pub fn rule(&self) -> &str {
        match &self.definition {
            Definition::Router(router) => &router.rule,
            Definition::TcpRouter(router) => &router.rule,
            _ => "",
        }
    }

    pub fn service(&self) -> &str {
        match &self.definition {
            Definition::Router(router) => &router.service,
            Definition::TcpRouter(router) => &router.service,
            Definition::UdpRouter(router) => &router.service,
            _ => "",
        }
    }

    pub fn middlewares(&self) -> &[String] {
        match &self.definition {
            Definition::Router(router) => &router.middlewares,
            Definition::TcpRouter(router) => &router.middlewares,
            _ => &[],
        }
    }

    /// Services: how many servers a load balancer has.
    pub fn server_count(&self) -> usize {
        match &self.definition {
            Definition::Service(service) => service
                .load_balancer
                .as_ref()
                .map_or(0, |lb| lb.servers.len()),
            Definition::TcpService(service) => service
                .load_balancer
                .as_ref()
                .map_or(0, |lb| lb.servers.len()),
            Definition::UdpService(service) => service
                .load_balancer
                .as_ref()
                .map_or(0, |lb| lb.servers.len()),
            _ => 0,
        }
    }
}

impl RuntimeView {
    /// The view of `sources` together (the merged configuration, and objects the compiler
    /// generates itself such as entry point redirections).
    pub fn build(
        sources: &[&HttpConfig],
        problems: Problems<'_>,
        entry_points: &[EntryPointFacts],
    ) -> Self {
        let default_entry_points = default_entry_points(entry_points);
        let routers: BTreeMap<String, ObjectInfo> = sources
            .iter()
            .flat_map(|http| &http.routers)
            .map(|(name, router)| {
                let info = router_info(name, router, problems, entry_points, &default_entry_points);
                (name.clone(), info)
            })
            .collect();
        let mut services: BTreeMap<String, ObjectInfo> = sources
            .iter()
            .flat_map(|http| &http.services)
            .map(|(name, service)| {
                let definition = Definition::Service(service.clone());
                (
                    name.clone(),
                    reported("http.services", name, definition, problems),
                )
            })
            .collect();
        let mut middlewares: BTreeMap<String, ObjectInfo> = sources
            .iter()
            .flat_map(|http| &http.middlewares)
            .map(|(name, middleware)| {
                let definition = Definition::Middleware(Box::new(middleware.clone()));
                (
                    name.clone(),
                    reported("http.middlewares", name, definition, problems),
                )
            })
            .collect();
        // `usedBy` lists the routers that name the object directly, as Traefik's does.
        for (router_name, router) in &routers {
            if let Some(service) = services.get_mut(router.service()) {
                service.used_by.push(router_name.clone());
            }
            for middleware in router.middlewares() {
                if let Some(m) = middlewares.get_mut(middleware) {
                    m.used_by.push(router_name.clone());
                }
            }
        }
        RuntimeView {
            routers,
            services,
            middlewares,
            tcp: ObjectSet::default(),
            udp: ObjectSet::default(),
        }
    }

    /// Adds the TCP and UDP objects of the merged configuration.
    pub fn with_streams(
        mut self,
        tcp: Option<&TcpConfig>,
        udp: Option<&UdpConfig>,
        problems: Problems<'_>,
        entry_points: &[EntryPointFacts],
    ) -> Self {
        let defaults = default_entry_points(entry_points);
        if let Some(tcp) = tcp {
            self.tcp = streams::tcp_objects(tcp, problems, entry_points, &defaults);
        }
        if let Some(udp) = udp {
            self.udp = streams::udp_objects(udp, problems, entry_points);
        }
        self
    }
}

fn router_info(
    name: &str,
    router: &Router,
    problems: Problems<'_>,
    entry_points: &[EntryPointFacts],
    default_entry_points: &[String],
) -> ObjectInfo {
    let declared = if router.entry_points.is_empty() {
        default_entry_points.to_vec()
    } else {
        router.entry_points.clone()
    };
    let using: Vec<String> = declared
        .iter()
        .filter(|ep| entry_points.iter().any(|e| &e.name == *ep && e.is_tcp))
        .cloned()
        .collect();
    let priority = if router.priority == 0 {
        router.rule.len() as i64
    } else {
        router.priority
    };
    ObjectInfo {
        using,
        entry_points: declared,
        priority,
        ..reported(
            "http.routers",
            name,
            Definition::Router(router.clone()),
            problems,
        )
    }
}

/// An object of `section` (`http.routers`, `tcp.services`, …) with the status and messages the
/// compiler reported for it, and no relations yet.
pub(crate) fn reported(
    section: &str,
    name: &str,
    definition: Definition,
    problems: Problems<'_>,
) -> ObjectInfo {
    let (status, errors) = status_of(section, name, problems);
    ObjectInfo {
        name: name.to_string(),
        provider: provider_of(name).to_string(),
        definition,
        status,
        errors,
        used_by: Vec::new(),
        using: Vec::new(),
        entry_points: Vec::new(),
        priority: 0,
        servers_up: false,
    }
}

fn status_of(section: &str, name: &str, problems: Problems<'_>) -> (Status, Vec<String>) {
    let key = format!("{section}.{name}");
    let errors = problems.errors.get(&key);
    let warnings = problems.warnings.get(&key);
    let status = if errors.is_some_and(|e| !e.is_empty()) {
        Status::Disabled
    } else if warnings.is_some_and(|w| !w.is_empty()) {
        Status::Warning
    } else {
        Status::Enabled
    };
    let messages = errors
        .into_iter()
        .chain(warnings)
        .flatten()
        .cloned()
        .collect();
    (status, messages)
}

/// The entry points a router without `entryPoints` attaches to: those flagged `asDefault`,
/// else every TCP entry point but `traefik`.
pub(crate) fn default_entry_points(entry_points: &[EntryPointFacts]) -> Vec<String> {
    let flagged: Vec<String> = entry_points
        .iter()
        .filter(|ep| ep.as_default && ep.is_tcp)
        .map(|ep| ep.name.clone())
        .collect();
    if !flagged.is_empty() {
        return flagged;
    }
    entry_points
        .iter()
        .filter(|ep| ep.is_tcp && ep.name != "traefik")
        .map(|ep| ep.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eps() -> Vec<EntryPointFacts> {
        ["web", "traefik"]
            .iter()
            .map(|n| EntryPointFacts {
                name: n.to_string(),
                as_default: false,
                is_tcp: true,
            })
            .collect()
    }

    #[test]
    fn routers_get_traefiks_defaults_and_relations() {
        let http: HttpConfig = serde_json::from_value(json!({
            "routers": {
                "app@file": {"rule": "Host(`a`)", "service": "svc@file", "middlewares": ["m@file"], "tls": {}},
                "bad@file": {"rule": "Path(`/`)", "service": "svc@file", "entryPoints": ["web", "ghost"]}
            },
            "services": {"svc@file": {"loadBalancer": {"servers": [{"url": "http://x"}]}}},
            "middlewares": {"m@file": {"stripPrefix": {"prefixes": ["/a"]}}}
        }))
        .unwrap();
        let errors = BTreeMap::from([(
            "http.routers.bad@file".to_string(),
            vec!["boom".to_string()],
        )]);
        let warnings = BTreeMap::new();
        let view = RuntimeView::build(
            &[&http],
            Problems {
                errors: &errors,
                warnings: &warnings,
            },
            &eps(),
        );
        let app = &view.routers["app@file"];
        assert_eq!(app.status, Status::Enabled);
        assert_eq!(app.using, vec!["web"]);
        assert_eq!(app.priority, 9);
        assert_eq!(app.config()["service"], json!("svc"));
        assert_eq!(app.config()["tls"], json!({"options": "default"}));
        assert_eq!(app.config()["entryPoints"], json!(["web"]));
        let bad = &view.routers["bad@file"];
        assert_eq!(bad.status, Status::Disabled);
        assert_eq!(bad.errors, vec!["boom"]);
        assert_eq!(bad.using, vec!["web"]);
        let svc = &view.services["svc@file"];
        assert_eq!(svc.kind().as_deref(), Some("loadbalancer"));
        assert_eq!(svc.used_by, vec!["app@file", "bad@file"]);
        assert_eq!(svc.config()["loadBalancer"]["strategy"], json!("wrr"));
        assert_eq!(svc.config()["loadBalancer"]["passHostHeader"], json!(true));
        let m = &view.middlewares["m@file"];
        assert_eq!(m.kind().as_deref(), Some("stripprefix"));
        assert_eq!(m.used_by, vec!["app@file"]);
    }
}
