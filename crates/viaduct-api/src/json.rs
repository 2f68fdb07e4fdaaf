//! Traefik's JSON conventions: Go's `omitempty` drops zero values, and the runtime fills in
//! the defaults it applied, so `/api` shows the configuration as Traefik runs it.

use serde_json::{Map, Value};

/// Booleans Traefik keeps even when false: they are pointers in its model, so "set to
/// false" differs from "absent".
const KEPT_FALSE: &[&str] = &[
    "passHostHeader",
    "mirrorBody",
    "followRedirects",
    "passthrough",
];

/// Maps in Traefik's model (omitted when empty), as opposed to pointers to structs (kept).
const DROPPED_EMPTY: &[&str] = &["headers"];

/// Removes what Go's `omitempty` would omit: nulls, empty strings, zero numbers, false
/// booleans (except [`KEPT_FALSE`]), zero durations and empty lists. Empty objects stay
/// (except [`DROPPED_EMPTY`]): in Traefik's model they are set pointers (`tls: {}`,
/// `healthCheck: {}`) and mean something.
pub(crate) fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => prune_map(map),
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fn prune_map(map: &mut Map<String, Value>) {
    map.retain(|key, value| {
        prune(value);
        match value {
            Value::Null => false,
            Value::String(s) => !s.is_empty() && s != "0s",
            Value::Bool(b) => *b || KEPT_FALSE.contains(&key.as_str()),
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Array(items) => !items.is_empty(),
            Value::Object(o) => !(o.is_empty() && DROPPED_EMPTY.contains(&key.as_str())),
        }
    });
}

/// Rewrites whole-second durations (`180s`) as Go prints them (`3m0s`), everywhere in `value`.
pub(crate) fn go_durations(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Some(seconds) = s.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()) {
                *s = go_duration(seconds);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(go_durations),
        Value::Object(map) => map.values_mut().for_each(go_durations),
        _ => {}
    }
}

fn go_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// `basicAuth` → `basicauth`: Traefik's `type` of a middleware or service.
pub(crate) fn type_name(key: &str) -> String {
    key.to_ascii_lowercase()
}

/// The only key of a one-key object (a middleware's or service's kind).
pub(crate) fn single_kind(config: &Map<String, Value>) -> Option<&str> {
    let mut keys = config.keys();
    match (keys.next(), keys.next()) {
        (Some(key), None) => Some(key.as_str()),
        _ => None,
    }
}

/// Sets `object[key]` to `value` unless present.
pub(crate) fn default_key(object: &mut Map<String, Value>, key: &str, value: Value) {
    object.entry(key.to_string()).or_insert(value);
}

/// The provider part of a qualified name (`app@file` → `file`).
pub(crate) fn provider_of(name: &str) -> &str {
    name.rsplit_once('@').map_or("", |(_, provider)| provider)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_like_omitempty() {
        let mut value = json!({
            "a": null, "b": "", "c": 0, "d": false, "e": [], "f": {},
            "passHostHeader": false, "g": {"h": null, "i": 2}, "j": [{"k": ""}]
        });
        prune(&mut value);
        assert_eq!(
            value,
            json!({"f": {}, "passHostHeader": false, "g": {"i": 2}, "j": [{}]})
        );
    }

    #[test]
    fn durations_print_like_go() {
        let mut value = json!({"a": "180s", "b": "10s", "c": "3600s", "d": "100ms", "e": "5"});
        go_durations(&mut value);
        assert_eq!(
            value,
            json!({"a": "3m0s", "b": "10s", "c": "1h0m0s", "d": "100ms", "e": "5"})
        );
    }
}
