//! An object's configuration as Traefik's API shows it: Go's `omitempty`, the defaults
//! Traefik fills in, and references as they were written. Done when an API call shows the
//! object, not when a configuration is compiled.

use serde_json::{json, Map, Value};
use viaduct_config::{Router, Service, TcpRouter, TcpService, UdpRouter, UdpService};

use crate::json::{default_key, prune};
use crate::view::ObjectInfo;

pub(crate) fn router(info: &ObjectInfo, router: &Router) -> Map<String, Value> {
    let provider = info.provider.as_str();
    let mut config = to_object(router);
    if !info.entry_points.is_empty() {
        config.insert("entryPoints".into(), json!(info.entry_points));
    }
    config.insert("priority".into(), json!(info.priority));
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
    config
}

pub(crate) fn service(provider: &str, service: &Service) -> Map<String, Value> {
    let mut config = to_object(service);
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
    config
}

pub(crate) fn middleware<T: serde::Serialize>(middleware: &T) -> Map<String, Value> {
    to_object(middleware)
}

/// A TCP router: entry points and priority as applied; unlike HTTP, no `observability` and
/// no TLS `options` default (Traefik shows `tls: {}` as `{"passthrough": false}`).
pub(crate) fn tcp_router(info: &ObjectInfo, router: &TcpRouter) -> Map<String, Value> {
    let mut config = to_object(router);
    if !info.entry_points.is_empty() {
        config.insert("entryPoints".into(), json!(info.entry_points));
    }
    if info.priority != 0 {
        config.insert("priority".into(), json!(info.priority));
    }
    written_service(&mut config, &router.service, &info.provider);
    if let Some(Value::Object(tls)) = config.get_mut("tls") {
        unqualify(tls.get_mut("options"), &info.provider);
    }
    config
}

pub(crate) fn udp_router(info: &ObjectInfo, router: &UdpRouter) -> Map<String, Value> {
    let mut config = to_object(router);
    written_service(&mut config, &router.service, &info.provider);
    config
}

pub(crate) fn tcp_service(provider: &str, service: &TcpService) -> Map<String, Value> {
    stream_service(to_object(service), provider)
}

pub(crate) fn udp_service(provider: &str, service: &UdpService) -> Map<String, Value> {
    stream_service(to_object(service), provider)
}

/// A TCP or UDP service: servers without their `port` (never shown by Traefik), weighted
/// children as written.
fn stream_service(mut config: Map<String, Value>, provider: &str) -> Map<String, Value> {
    if let Some(Value::Array(servers)) = config
        .get_mut("loadBalancer")
        .and_then(|lb| lb.get_mut("servers"))
    {
        for server in servers.iter_mut().filter_map(Value::as_object_mut) {
            server.remove("port");
        }
    }
    if let Some(Value::Array(children)) = config
        .get_mut("weighted")
        .and_then(|w| w.get_mut("services"))
    {
        for child in children {
            unqualify(child.get_mut("name"), provider);
        }
    }
    config
}

fn written_service(config: &mut Map<String, Value>, service: &str, provider: &str) {
    if !service.is_empty() {
        config.insert("service".into(), json!(as_written(service, provider)));
    }
}

/// The serialised value with Go's empty values removed.
fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    prune(&mut value);
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
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
