//! Traefik's KV layout: one key per leaf of the dynamic configuration, under a root key.
//!
//! `traefik/http/routers/r1/rule`, `traefik/http/routers/r1/entrypoints/0`,
//! `traefik/http/services/s/loadbalancer/servers/0/url`,
//! `traefik/http/middlewares/m/headers/customrequestheaders/X-A`, `traefik/tls/options/o/minversion`.
//! Segments match the model's fields ignoring case, numeric segments index lists, map keys
//! are segments (their spelling kept), values are strings converted as the model asks.
//!
//! As Traefik does, empty segments are ignored (`traefik//http/` is `traefik/http`), the root
//! is the first segment, and only keys under `<root>/http`, `/tcp`, `/udp` and `/tls` are
//! read: anything else under the root belongs to someone else.

use viaduct_config::flat::decode_flat_with;
use viaduct_config::{DynamicConfig, Origin};

/// The configuration's sections; other keys under the root are not configuration.
const SECTIONS: [&str; 4] = ["http", "tcp", "udp", "tls"];

/// Why the pairs do not form a configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("key {key:?}: {message}")]
pub struct LayoutError {
    /// The store's key that does not decode (or the nearest one to the problem).
    pub key: String,
    pub message: String,
}

/// Decodes `(key, value)` pairs under `root_key` into a configuration. Keys outside the root
/// or outside its sections are ignored; no pairs give an empty configuration.
pub fn decode_layout(
    pairs: &[(String, String)],
    root_key: &str,
) -> Result<DynamicConfig, LayoutError> {
    let root = segments(root_key);
    let mut relative = Vec::new();
    // The store's key for each relative key, to name the key an error is about.
    let mut originals = Vec::new();
    for (key, value) in pairs {
        let parts = segments(key);
        let under_root = parts.len() > root.len()
            && parts
                .iter()
                .zip(&root)
                .all(|(part, root)| part.eq_ignore_ascii_case(root));
        if !under_root {
            continue;
        }
        let rest = &parts[root.len()..];
        if !SECTIONS.iter().any(|s| rest[0].eq_ignore_ascii_case(s)) {
            continue;
        }
        relative.push((rest.join("/"), value.clone()));
        originals.push((rest.iter().map(|s| s.to_ascii_lowercase()).collect(), key));
    }
    decode_flat_with(&relative, '/', Origin::Inline("redis")).map_err(|e| LayoutError {
        key: nearest_key(&e.key, &originals).unwrap_or_else(|| e.key.clone()),
        message: e.message,
    })
}

/// The non-empty `/`-separated segments of a key.
fn segments(key: &str) -> Vec<&str> {
    key.split('/').filter(|s| !s.is_empty()).collect()
}

/// The first store key at or under the decoder's dotted path (`http.routers.r.priority`), or
/// the one sharing the longest prefix with it.
fn nearest_key(path: &str, originals: &[(Vec<String>, &String)]) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let wanted: Vec<String> = path
        .split(['.', '[', ']'])
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut best: Option<(usize, &String)> = None;
    for (parts, key) in originals {
        let shared = parts
            .iter()
            .zip(&wanted)
            .take_while(|(a, b)| a == b)
            .count();
        if best.is_none_or(|(most, _)| shared > most) {
            best = Some((shared, key));
        }
    }
    best.map(|(_, key)| key.clone())
}
