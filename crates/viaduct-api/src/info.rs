//! What the API reports from the static configuration, fixed for the process's lifetime.

use serde_json::{Map, Value};
use viaduct_config::StaticConfig;
use viaduct_observe::UtcTime;

use crate::json;

/// The static facts behind `/api/version`, `/api/overview` and `/api/entrypoints`.
#[derive(Debug, Clone)]
pub struct ApiInfo {
    pub settings: ApiSettings,
    pub version: String,
    pub codename: String,
    /// RFC 3339, as Traefik's `startDate`.
    pub start_date: String,
    /// Each entry point's static configuration as JSON (with `name`), sorted by name.
    pub entry_points: Vec<(String, Value)>,
    /// `features.tracing` / `.metrics`: the backend's name, or empty.
    pub tracing: String,
    pub metrics: String,
    pub access_log: bool,
    /// Enabled providers as Traefik names them (`File`, `Docker`, …).
    pub providers: Vec<String>,
}

/// The `api` section of the static configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Always starts and ends with `/` (`/` by default).
    pub base_path: String,
    pub dashboard: bool,
    pub debug: bool,
    pub disable_dashboard_ad: bool,
    pub dashboard_name: Option<String>,
}

impl ApiInfo {
    /// The API's static facts; `None` when the static configuration has no `api` section
    /// (then `api@internal` does not exist, as in Traefik).
    pub fn from_static(config: &StaticConfig, started: std::time::SystemTime) -> Option<Self> {
        let api = config.api.as_ref()?;
        let settings = ApiSettings {
            base_path: normalize_base_path(&api.base_path),
            dashboard: api.dashboard,
            debug: api.debug,
            disable_dashboard_ad: api.disable_dashboard_ad,
            dashboard_name: api.dashboard_name.clone().filter(|n| !n.is_empty()),
        };
        let entry_points = config
            .entry_points
            .iter()
            .map(|(name, ep)| {
                let mut value = serde_json::to_value(ep).unwrap_or(Value::Null);
                json::prune(&mut value);
                json::go_durations(&mut value);
                let mut object = match value {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                // Defaults Traefik fills in and Viaduct's model leaves unset.
                json::default_key(
                    &mut object,
                    "http2",
                    serde_json::json!({
                        "maxConcurrentStreams": 250,
                        "maxDecoderHeaderTableSize": 4096,
                        "maxEncoderHeaderTableSize": 4096,
                    }),
                );
                json::default_key(&mut object, "udp", serde_json::json!({"timeout": "3s"}));
                object.insert("name".into(), Value::String(name.clone()));
                (name.clone(), Value::Object(object))
            })
            .collect();
        let metrics = config.metrics.as_ref().map_or("", |m| {
            if m.datadog.is_some() {
                "Datadog"
            } else if m.influx_db2.is_some() {
                "InfluxDB2"
            } else if m.prometheus.is_some() {
                "Prometheus"
            } else if m.stats_d.is_some() {
                "StatsD"
            } else if m.otlp.is_some() {
                "OpenTelemetry"
            } else {
                ""
            }
        });
        Some(ApiInfo {
            settings,
            version: env!("CARGO_PKG_VERSION").to_string(),
            codename: "viaduct".to_string(),
            start_date: UtcTime::of(started).rfc3339_nanos(),
            entry_points,
            tracing: if config.tracing.is_some() {
                "OpenTelemetry".into()
            } else {
                String::new()
            },
            metrics: metrics.into(),
            access_log: config.access_log.is_some(),
            providers: provider_names(config),
        })
    }
}

/// `basePath` with exactly one `/` at each end, so `{base}api/...` is always well formed.
fn normalize_base_path(raw: &str) -> String {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

/// The providers configured, named as Traefik's overview names them.
fn provider_names(config: &StaticConfig) -> Vec<String> {
    let Ok(Value::Object(providers)) = serde_json::to_value(&config.providers) else {
        return Vec::new();
    };
    let not_providers = ["providersThrottleDuration", "precedence", "plugin"];
    providers
        .iter()
        .filter(|(key, value)| !not_providers.contains(&key.as_str()) && !value.is_null())
        .map(|(key, _)| match key.as_str() {
            "http" => "HTTP".to_string(),
            "ecs" => "ECS".to_string(),
            other => {
                let mut chars = other.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_slash_delimited() {
        assert_eq!(normalize_base_path("/"), "/");
        assert_eq!(normalize_base_path(""), "/");
        assert_eq!(normalize_base_path("/traefik"), "/traefik/");
        assert_eq!(normalize_base_path("admin/"), "/admin/");
    }
}
