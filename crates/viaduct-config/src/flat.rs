//! Flat `key=value` configuration: CLI flags, `TRAEFIK_*` variables, Docker labels, KV stores.
//!
//! Keys are paths of segments separated by `.` (`entryPoints.web.address`). The pairs are
//! first gathered into a value tree, then decoded with the rules of [`crate::decode_value`],
//! which gives flat sources everything files have:
//!
//! - segments match struct fields ignoring case; segments that only differ by case are merged
//!   (`HTTP.routers` and `http.Routers` are one node), keeping the first spelling;
//! - a list is one comma-separated value (`entrypoints=web,websecure`) or indexed elements
//!   (`domains[0].main`, `domains.0.main`, KV `servers/0/url`);
//! - leaves are strings, converted to bool, number or duration as the model asks;
//! - a section set to `true` (or empty) is enabled with its defaults (`--providers.docker`);
//!   sub-keys of the same section fill it (`--providers.docker --providers.docker.network=x`).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::decode::from_value;
use crate::{ConfigError, DynamicConfig, Origin};

/// Decodes `key=value` pairs with `.`-separated keys into `T`. No pairs yield `T::default()`.
pub fn decode_flat<T: DeserializeOwned + Default>(
    pairs: &[(String, String)],
    origin: Origin,
) -> Result<T, ConfigError> {
    decode_flat_with(pairs, '.', origin)
}

/// As [`decode_flat`], with another segment separator (`/` for KV stores).
pub fn decode_flat_with<T: DeserializeOwned + Default>(
    pairs: &[(String, String)],
    separator: char,
    origin: Origin,
) -> Result<T, ConfigError> {
    let mut paths = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        paths.push((split_key(key, separator, &origin)?, value.clone()));
    }
    decode_paths(paths, origin)
}

/// Decodes the dynamic configuration carried by container labels (`traefik.http.routers.r.rule`).
///
/// Only keys under `root` (e.g. `traefik`) followed by `http`, `tcp`, `udp` or `tls` are read;
/// provider keys such as `traefik.enable` or `traefik.docker.network` are left to the provider.
/// The singular `loadbalancer.server.*` of the label grammar fills the first server.
pub fn decode_labels(
    labels: &BTreeMap<String, String>,
    root: &str,
) -> Result<DynamicConfig, ConfigError> {
    let origin = Origin::Inline("labels");
    let root_segments: Vec<&str> = root.split('.').filter(|s| !s.is_empty()).collect();
    let mut paths = Vec::new();
    for (key, value) in labels {
        let segments = split_key(key, '.', &origin)?;
        let under_root = segments.len() > root_segments.len()
            && segments
                .iter()
                .zip(&root_segments)
                .all(|(seg, root)| seg.eq_ignore_ascii_case(root));
        if !under_root {
            continue;
        }
        let rest = segments[root_segments.len()..].to_vec();
        let is_dynamic = ["http", "tcp", "udp", "tls"]
            .iter()
            .any(|r| rest[0].eq_ignore_ascii_case(r));
        if is_dynamic {
            paths.push((rest, value.clone()));
        }
    }
    let mut tree = build_tree(paths, &origin)?;
    singular_servers_to_lists(&mut tree);
    from_value(tree).map_err(|e| e.into_config_error(origin))
}

/// Decodes already split paths.
pub(crate) fn decode_paths<T: DeserializeOwned + Default>(
    paths: Vec<(Vec<String>, String)>,
    origin: Origin,
) -> Result<T, ConfigError> {
    if paths.is_empty() {
        return Ok(T::default());
    }
    let tree = build_tree(paths, &origin)?;
    from_value(tree).map_err(|e| e.into_config_error(origin))
}

/// Splits `a.b[0].c` into `["a", "b", "0", "c"]`.
pub(crate) fn split_key(
    key: &str,
    separator: char,
    origin: &Origin,
) -> Result<Vec<String>, ConfigError> {
    let mut segments = Vec::new();
    for part in key.split(separator) {
        let mut pieces = part.split('[');
        let head = pieces.next().unwrap_or_default();
        segments.push(head.to_owned());
        for index in pieces {
            let Some(index) = index.strip_suffix(']') else {
                return Err(flat_error(origin, key, "unbalanced `[` in key"));
            };
            segments.push(index.to_owned());
        }
    }
    if segments.iter().any(|s| s.trim().is_empty()) {
        return Err(flat_error(origin, key, "empty segment in key"));
    }
    Ok(segments)
}

/// Gathers the pairs into one tree of objects with string leaves.
pub(crate) fn build_tree(
    paths: Vec<(Vec<String>, String)>,
    origin: &Origin,
) -> Result<Value, ConfigError> {
    let mut root = Value::Object(Map::new());
    for (segments, value) in paths {
        insert(&mut root, &segments, value, origin, &segments.join("."))?;
    }
    Ok(root)
}

fn insert(
    node: &mut Value,
    segments: &[String],
    value: String,
    origin: &Origin,
    key: &str,
) -> Result<(), ConfigError> {
    let Some((segment, rest)) = segments.split_first() else {
        return Ok(());
    };
    if is_enable_marker(node) {
        // `--providers.docker` followed by `--providers.docker.network=x`: the section is
        // enabled either way, its options fill it.
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else {
        let parent = key_prefix(key, segments.len());
        return Err(flat_error(
            origin,
            key,
            &format!("`{parent}` is given a value and also sub-keys"),
        ));
    };
    let name = map
        .keys()
        .find(|existing| existing.eq_ignore_ascii_case(segment))
        .cloned()
        .unwrap_or_else(|| segment.clone());
    if rest.is_empty() {
        let keeps_section = matches!(map.get(&name), Some(Value::Object(_)))
            && is_enable_marker(&Value::String(value.clone()));
        if !keeps_section {
            map.insert(name, Value::String(value));
        }
        return Ok(());
    }
    let child = map.entry(name).or_insert_with(|| Value::Object(Map::new()));
    insert(child, rest, value, origin, key)
}

fn is_enable_marker(value: &Value) -> bool {
    matches!(value, Value::String(s) if s.is_empty() || s.eq_ignore_ascii_case("true"))
}

/// The key without its last `remaining - 1` segments (the node that already holds a value).
fn key_prefix(key: &str, remaining: usize) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    parts[..parts.len().saturating_sub(remaining)].join(".")
}

/// Labels write `loadbalancer.server.port`; the model has `loadBalancer.servers[]`.
fn singular_servers_to_lists(node: &mut Value) {
    let Value::Object(map) = node else {
        return;
    };
    for (key, child) in map.iter_mut() {
        if key.eq_ignore_ascii_case("loadbalancer") {
            if let Value::Object(balancer) = child {
                let singular = balancer
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case("server"))
                    .cloned();
                let has_list = balancer.keys().any(|k| k.eq_ignore_ascii_case("servers"));
                if let (Some(singular), false) = (singular, has_list) {
                    if let Some(server) = balancer.remove(&singular) {
                        balancer.insert("servers".into(), Value::Array(vec![server]));
                    }
                }
            }
        }
        singular_servers_to_lists(child);
    }
}

fn flat_error(origin: &Origin, key: &str, message: &str) -> ConfigError {
    ConfigError {
        origin: origin.clone(),
        key: key.to_owned(),
        line: None,
        message: message.to_owned(),
    }
}
