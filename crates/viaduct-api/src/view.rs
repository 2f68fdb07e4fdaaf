//! The runtime view: every HTTP router, service and middleware of one compiled configuration
//! with its status, errors and relations, in the shape the API serves. Built once per
//! compile, never per API call.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use viaduct_config::{HttpConfig, Router, Service};

use crate::json::{default_key, provider_of, prune, single_kind, type_name};

/// Traefik's object status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Enabled,
    Warning,
    Disabled,
}

/// What the compiler found wrong, by object (`http.routers.<name>`, `http.services.<name>`,
/// `http.middlewares.<name>`); other keys are ignored.
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
    /// The configuration with Traefik's defaults filled in and empty values removed.
    pub config: Map<String, Value>,
    pub status: Status,
    /// Errors, then warnings (Traefik lists both under `error`).
    pub errors: Vec<String>,
    /// Services and middlewares: the routers that reference them, sorted.
    pub used_by: Vec<String>,
    /// Routers: the entry points they are attached to.
    pub using: Vec<String>,
    /// Services and middlewares: `loadbalancer`, `basicauth`, …; `None` for internal services.
    pub kind: Option<String>,
    /// Routers: the effective priority.
    pub priority: i64,
    /// Routers: the rule, the qualified service and middlewares (for filters).
    pub rule: String,
    pub service: String,
    pub middlewares: Vec<String>,
}

/// Every HTTP object of one configuration, by qualified name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeView {
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
            .map(|(name, service)| (name.clone(), service_info(name, service, problems)))
            .collect();
        let mut middlewares: BTreeMap<String, ObjectInfo> = sources
            .iter()
            .flat_map(|http| &http.middlewares)
            .map(|(name, middleware)| {
                let mut config = to_object(middleware);
                prune_map(&mut config);
                let kind = single_kind(&config).map(type_name);
                let (status, errors) = status_of("http.middlewares", name, problems);
                let info = ObjectInfo {
                    kind,
                    ..object(name, config, status, errors)
                };
                (name.clone(), info)
            })
            .collect();
        // `usedBy` lists the routers that name the object directly, as Traefik's does.
        for (router_name, router) in &routers {
            if let Some(service) = services.get_mut(&router.service) {
                service.used_by.push(router_name.clone());
            }
            for middleware in &router.middlewares {
                if let Some(m) = middlewares.get_mut(middleware) {
                    m.used_by.push(router_name.clone());
                }
            }
        }
        RuntimeView {
            routers,
            services,
            middlewares,
        }
    }
}

fn router_info(
    name: &str,
    router: &Router,
    problems: Problems<'_>,
    entry_points: &[EntryPointFacts],
    default_entry_points: &[String],
) -> ObjectInfo {
    let provider = provider_of(name);
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
    let mut config = to_object(router);
    prune_map(&mut config);
    if !declared.is_empty() {
        config.insert("entryPoints".into(), json!(declared));
    }
    config.insert("priority".into(), json!(priority));
    if !router.service.is_empty() {
        config.insert(
            "service".into(),
            json!(as_written(&router.service, provider)),
        );
    }
    if provider == "internal" {
        default_key(&mut config, "ruleSyntax", json!("default"));
    }
    if let Some(Value::Object(tls)) = config.get_mut("tls") {
        default_key(tls, "options", json!("default"));
    }
    let observability = config
        .entry("observability")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(o) = observability {
        default_key(o, "accessLogs", json!(true));
        default_key(o, "metrics", json!(true));
        default_key(o, "tracing", json!(true));
        default_key(o, "traceVerbosity", json!("minimal"));
    }
    let (status, errors) = status_of("http.routers", name, problems);
    ObjectInfo {
        using,
        priority,
        rule: router.rule.clone(),
        service: router.service.clone(),
        middlewares: router.middlewares.clone(),
        ..object(name, config, status, errors)
    }
}

fn service_info(name: &str, service: &Service, problems: Problems<'_>) -> ObjectInfo {
    let provider = provider_of(name);
    let mut config = to_object(service);
    prune_map(&mut config);
    if let Some(Value::Object(lb)) = config.get_mut("loadBalancer") {
        default_key(lb, "strategy", json!("wrr"));
        let forwarding = lb
            .entry("responseForwarding")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(f) = forwarding {
            default_key(f, "flushInterval", json!("100ms"));
        }
        if let Some(Value::Object(hc)) = lb.get_mut("healthCheck") {
            default_key(hc, "mode", json!("http"));
            default_key(hc, "interval", json!("30s"));
            default_key(hc, "timeout", json!("5s"));
            default_key(hc, "followRedirects", json!(true));
        }
    }
    // Child references are shown as written: unqualified within the same provider.
    for kind in ["weighted", "highestRandomWeight"] {
        if let Some(Value::Array(children)) =
            config.get_mut(kind).and_then(|k| k.get_mut("services"))
        {
            for child in children {
                unqualify(child.get_mut("name"), provider);
            }
        }
    }
    for (kind, keys) in [
        ("mirroring", &["service"][..]),
        ("failover", &["service", "fallback"][..]),
    ] {
        if let Some(Value::Object(object)) = config.get_mut(kind) {
            for key in keys {
                unqualify(object.get_mut(*key), provider);
            }
            if let Some(Value::Array(mirrors)) = object.get_mut("mirrors") {
                for mirror in mirrors {
                    unqualify(mirror.get_mut("name"), provider);
                }
            }
        }
    }
    let kind = single_kind(&config).map(type_name);
    let (status, errors) = status_of("http.services", name, problems);
    ObjectInfo {
        kind,
        ..object(name, config, status, errors)
    }
}

fn object(
    name: &str,
    config: Map<String, Value>,
    status: Status,
    errors: Vec<String>,
) -> ObjectInfo {
    ObjectInfo {
        name: name.to_string(),
        provider: provider_of(name).to_string(),
        config,
        status,
        errors,
        used_by: Vec::new(),
        using: Vec::new(),
        kind: None,
        priority: 0,
        rule: String::new(),
        service: String::new(),
        middlewares: Vec::new(),
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
fn default_entry_points(entry_points: &[EntryPointFacts]) -> Vec<String> {
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

fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn prune_map(map: &mut Map<String, Value>) {
    let mut value = Value::Object(std::mem::take(map));
    prune(&mut value);
    if let Value::Object(pruned) = value {
        *map = pruned;
    }
}

/// `app@file` within provider `file` → `app`.
fn as_written(reference: &str, provider: &str) -> String {
    match reference.rsplit_once('@') {
        // Internal objects reference each other qualified (`api@internal`).
        Some((name, p)) if p == provider && !provider.is_empty() && p != "internal" => {
            name.to_string()
        }
        _ => reference.to_string(),
    }
}

fn unqualify(value: Option<&mut Value>, provider: &str) {
    if let Some(Value::String(name)) = value {
        *name = as_written(name, provider);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(app.config["service"], json!("svc"));
        assert_eq!(app.config["tls"], json!({"options": "default"}));
        assert_eq!(app.config["entryPoints"], json!(["web"]));
        let bad = &view.routers["bad@file"];
        assert_eq!(bad.status, Status::Disabled);
        assert_eq!(bad.errors, vec!["boom"]);
        assert_eq!(bad.using, vec!["web"]);
        let svc = &view.services["svc@file"];
        assert_eq!(svc.kind.as_deref(), Some("loadbalancer"));
        assert_eq!(svc.used_by, vec!["app@file", "bad@file"]);
        assert_eq!(svc.config["loadBalancer"]["strategy"], json!("wrr"));
        assert_eq!(svc.config["loadBalancer"]["passHostHeader"], json!(true));
        let m = &view.middlewares["m@file"];
        assert_eq!(m.kind.as_deref(), Some("stripprefix"));
        assert_eq!(m.used_by, vec!["app@file"]);
    }
}
