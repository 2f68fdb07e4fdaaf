//! `log`, `accessLog`, `tracing`, `metrics`, `ping` and `api`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::GoDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Log {
    /// TRACE, DEBUG, INFO, WARN, ERROR, FATAL or PANIC.
    pub level: String,
    /// `common` or `json`.
    pub format: String,
    pub file_path: Option<String>,
    pub no_color: bool,
    /// Rotation of `filePath` (megabytes, days, files).
    pub max_size: Option<i64>,
    pub max_age: Option<i64>,
    pub max_backups: Option<i64>,
    pub compress: Option<bool>,
    pub otlp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AccessLog {
    pub file_path: Option<String>,
    /// `common`, `genericCLF` or `json`.
    pub format: String,
    pub buffering_size: i64,
    pub filters: Option<AccessLogFilters>,
    pub fields: Option<serde_json::Value>,
    pub add_internals: bool,
    pub dual_output: bool,
    pub otlp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AccessLogFilters {
    pub status_codes: Vec<String>,
    pub retry_attempts: bool,
    pub min_duration: GoDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Tracing {
    pub service_name: String,
    pub resource_attributes: BTreeMap<String, String>,
    /// Deprecated name of `resourceAttributes`.
    pub global_attributes: BTreeMap<String, String>,
    pub sample_rate: f64,
    pub captured_request_headers: Vec<String>,
    pub captured_response_headers: Vec<String>,
    pub safe_query_params: Vec<String>,
    pub add_internals: bool,
    pub otlp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Metrics {
    pub add_internals: bool,
    pub prometheus: Option<Prometheus>,
    pub otlp: Option<serde_json::Value>,
    pub datadog: Option<serde_json::Value>,
    #[serde(rename = "influxDB2")]
    pub influx_db2: Option<serde_json::Value>,
    #[serde(rename = "statsD")]
    pub stats_d: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Prometheus {
    pub buckets: Vec<f64>,
    pub add_entry_points_labels: bool,
    pub add_routers_labels: bool,
    pub add_services_labels: bool,
    pub entry_point: String,
    pub manual_routing: bool,
    pub header_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Ping {
    pub entry_point: String,
    pub manual_routing: bool,
    pub terminating_status_code: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Api {
    /// Serve the API and dashboard on the `traefik` entry point.
    pub insecure: bool,
    pub dashboard: bool,
    pub base_path: String,
    pub debug: bool,
    pub disable_dashboard_ad: bool,
    pub dashboard_name: Option<String>,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "ERROR".into(),
            format: "common".into(),
            file_path: None,
            no_color: false,
            max_size: None,
            max_age: None,
            max_backups: None,
            compress: None,
            otlp: None,
        }
    }
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            file_path: None,
            format: "common".into(),
            buffering_size: 0,
            filters: None,
            fields: None,
            add_internals: false,
            dual_output: false,
            otlp: None,
        }
    }
}

impl Default for Tracing {
    fn default() -> Self {
        Tracing {
            service_name: "traefik".into(),
            resource_attributes: BTreeMap::new(),
            global_attributes: BTreeMap::new(),
            sample_rate: 1.0,
            captured_request_headers: Vec::new(),
            captured_response_headers: Vec::new(),
            safe_query_params: Vec::new(),
            add_internals: false,
            otlp: None,
        }
    }
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            buckets: vec![0.1, 0.3, 1.2, 5.0],
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            entry_point: "traefik".into(),
            manual_routing: false,
            header_labels: BTreeMap::new(),
        }
    }
}

impl Default for Ping {
    fn default() -> Self {
        Ping {
            entry_point: "traefik".into(),
            manual_routing: false,
            terminating_status_code: 503,
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Api {
            insecure: false,
            dashboard: true,
            base_path: "/".into(),
            debug: false,
            disable_dashboard_ad: false,
            dashboard_name: None,
        }
    }
}
