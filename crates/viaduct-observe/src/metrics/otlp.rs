//! `metrics.otlp`: the registry's metrics as OTLP instruments with Traefik's names
//! (`traefik_entrypoint_requests_total`, …), cumulative, encoded as an
//! `ExportMetricsServiceRequest` for `POST /v1/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;

use super::walk::PushOptions;
use super::{lock, BackendSettings, Registry, ScrapeExtras, Series, SeriesKey, SeriesTable};
use crate::otlp::wire::{self, double, fixed64, message, packed_fixed64, string, varint_field};
use crate::otlp::{
    resource, Collector, EndpointError, ExporterOptions, GrpcExporterOptions, HttpExporterOptions,
};

/// Traefik's default `explicitBoundaries` (seconds).
const DEFAULT_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// OTLP's `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// `metrics.otlp`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpMetricsSettings {
    /// `explicitBoundaries` and the `add…Labels` switches.
    pub families: BackendSettings,
    pub push_interval: Duration,
    /// `service.name`, `service.version`, then `resourceAttributes`.
    pub resource: Vec<(String, String)>,
    pub collector: Collector,
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpMetricsError {
    #[error("metrics.otlp: {0}")]
    Options(String),
    #[error("metrics.otlp endpoint {0}")]
    Endpoint(#[from] EndpointError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOtlp {
    #[serde(flatten)]
    common: PushOptions,
    #[serde(default)]
    explicit_boundaries: Option<Vec<f64>>,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    resource_attributes: BTreeMap<String, String>,
    #[serde(default)]
    http: Option<HttpExporterOptions>,
    #[serde(default)]
    grpc: Option<GrpcExporterOptions>,
}

/// One data point's attributes, sorted by key.
type Attributes = Vec<(&'static str, String)>;

/// The `ScopeMetrics` being written, and the times every point carries.
struct Scope {
    metrics: Vec<u8>,
    start: u64,
    now: u64,
}

impl OtlpMetricsSettings {
    pub fn from_static(value: &serde_json::Value) -> Result<OtlpMetricsSettings, OtlpMetricsError> {
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value.clone()
        };
        let raw: RawOtlp =
            serde_json::from_value(value).map_err(|e| OtlpMetricsError::Options(e.to_string()))?;
        let collector = ExporterOptions::chosen(raw.http, raw.grpc).collector(
            "/v1/metrics",
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        )?;
        let resource = resource(
            raw.service_name.unwrap_or_else(|| "traefik".into()),
            raw.resource_attributes,
        );
        Ok(OtlpMetricsSettings {
            families: raw.common.families(super::sorted_bounds(
                raw.explicit_boundaries
                    .as_deref()
                    .unwrap_or(&DEFAULT_BOUNDARIES),
            )),
            push_interval: raw.common.push_interval(),
            resource,
            collector,
        })
    }
}

/// Every metric, cumulative since `start` (Unix nanoseconds), as of `now`.
pub(super) fn export_request(
    registry: &Registry,
    otlp: &OtlpMetricsSettings,
    extras: &ScrapeExtras,
    start: u64,
    now: u64,
) -> Vec<u8> {
    let mut scope = Scope {
        metrics: Vec::new(),
        start,
        now,
    };
    let families = &otlp.families;
    scope.sum(
        "traefik_config_reloads_total",
        "Config reloads",
        vec![(Vec::new(), registry.reloads.load(Ordering::Relaxed) as f64)],
    );
    scope.gauge(
        "traefik_config_last_reload_success",
        "Last config reload success",
        vec![(
            Vec::new(),
            f64::from_bits(registry.last_reload_success.load(Ordering::Relaxed)),
        )],
    );
    let connections = lock(&registry.open_connections)
        .iter()
        .map(|(entry_point, gauge)| {
            (
                vec![
                    ("entrypoint", entry_point.clone()),
                    ("protocol", "TCP".to_string()),
                ],
                gauge.get() as f64,
            )
        })
        .collect();
    scope.gauge(
        "traefik_open_connections",
        "How many open connections exist, by entryPoint and protocol",
        connections,
    );
    scope.gauge(
        "traefik_tls_certs_not_after",
        "Certificate expiration timestamp",
        extras
            .certificates
            .iter()
            .map(|c| {
                (
                    vec![
                        ("cn", c.common_name.clone()),
                        ("sans", c.sans.clone()),
                        ("serial", c.serial.clone()),
                    ],
                    c.not_after_unix as f64,
                )
            })
            .collect(),
    );

    if families.entry_points {
        let tables: Vec<(Attributes, std::sync::Arc<SeriesTable>)> = lock(&registry.entry_points)
            .iter()
            .map(|(name, table)| (vec![("entrypoint", name.clone())], table.clone()))
            .collect();
        scope.requests(
            "traefik_entrypoint",
            "an entrypoint",
            &tables,
            &families.buckets,
        );
    }
    if families.routers {
        let tables: Vec<(Attributes, std::sync::Arc<SeriesTable>)> = lock(&registry.routers)
            .iter()
            .filter_map(|((router, service), weak)| {
                let table = weak.upgrade()?;
                Some((
                    vec![("router", router.clone()), ("service", service.clone())],
                    table,
                ))
            })
            .collect();
        scope.requests("traefik_router", "a router", &tables, &families.buckets);
    }
    if families.services {
        let tables: Vec<(Attributes, std::sync::Arc<SeriesTable>)> = lock(&registry.services)
            .iter()
            .filter_map(|(service, weak)| {
                Some((vec![("service", service.clone())], weak.upgrade()?))
            })
            .collect();
        scope.requests("traefik_service", "a service", &tables, &families.buckets);
        scope.sum(
            "traefik_service_retries_total",
            "How many request retries happened on a service.",
            tables
                .iter()
                .filter(|(_, table)| table.retries() > 0)
                .map(|(labels, table)| (labels.clone(), table.retries() as f64))
                .collect(),
        );
        scope.gauge(
            "traefik_service_server_up",
            "service server is up, described by gauge value of 0 or 1.",
            extras
                .servers
                .iter()
                .map(|s| {
                    (
                        vec![("service", s.service.clone()), ("url", s.url.clone())],
                        f64::from(u8::from(s.up)),
                    )
                })
                .collect(),
        );
    }

    let mut scope_metrics = Vec::new();
    message(&mut scope_metrics, 1, &wire::scope());
    scope_metrics.extend_from_slice(&scope.metrics);
    let mut resource_metrics = Vec::new();
    message(&mut resource_metrics, 1, &wire::resource(&otlp.resource));
    message(&mut resource_metrics, 2, &scope_metrics);
    let mut request = Vec::new();
    message(&mut request, 1, &resource_metrics);
    request
}

impl Scope {
    /// The request counters and duration histogram of one kind of family.
    fn requests(
        &mut self,
        prefix: &str,
        what: &str,
        tables: &[(Attributes, std::sync::Arc<SeriesTable>)],
        bounds: &[f64],
    ) {
        let rows: Vec<(Attributes, &SeriesTable, SeriesKey, std::sync::Arc<Series>)> = tables
            .iter()
            .flat_map(|(fixed, table)| {
                table
                    .snapshot()
                    .into_iter()
                    .map(move |(key, series)| (attributes(key, fixed), table.as_ref(), key, series))
            })
            .collect();
        let counter = |read: fn(&Series) -> u64| -> Vec<(Attributes, f64)> {
            rows.iter()
                .map(|(attributes, _, _, series)| (attributes.clone(), read(series) as f64))
                .collect()
        };
        self.sum(
            &format!("{prefix}_requests_total"),
            &format!("How many HTTP requests processed on {what}, partitioned by status code, protocol, and method."),
            counter(|s| s.requests.load(Ordering::Relaxed)),
        );
        self.sum(
            &format!("{prefix}_requests_bytes_total"),
            &format!("The total size of requests in bytes handled by {what}, partitioned by status code, protocol, and method."),
            counter(|s| s.request_bytes.load(Ordering::Relaxed)),
        );
        self.sum(
            &format!("{prefix}_responses_bytes_total"),
            &format!("The total size of responses in bytes handled by {what}, partitioned by status code, protocol, and method."),
            counter(|s| s.response_bytes.load(Ordering::Relaxed)),
        );
        let tls = tables
            .iter()
            .flat_map(|(fixed, table)| {
                table.tls_counts().into_iter().map(move |(tls, count)| {
                    let mut all = fixed.clone();
                    all.push(("tls_cipher", tls.cipher.to_string()));
                    all.push(("tls_version", tls.version.to_string()));
                    all.sort_by_key(|(k, _)| *k);
                    (all, count as f64)
                })
            })
            .collect();
        self.sum(
            &format!("{prefix}_requests_tls_total"),
            &format!("How many HTTP requests with TLS processed on {what}, partitioned by TLS version and TLS cipher."),
            tls,
        );
        let points: Vec<Vec<u8>> = rows
            .iter()
            .map(|(attributes, table, _, series)| {
                self.histogram_point(attributes, table, series, bounds)
            })
            .collect();
        if points.is_empty() {
            return;
        }
        let mut histogram = Vec::new();
        for point in &points {
            message(&mut histogram, 1, point);
        }
        varint_field(&mut histogram, 2, CUMULATIVE);
        let mut metric = metric_head(
            &format!("{prefix}_request_duration_seconds"),
            &format!("How long it took to process the request on {what}, partitioned by status code, protocol, and method."),
            "s",
        );
        message(&mut metric, 9, &histogram);
        message(&mut self.metrics, 2, &metric);
    }

    /// A monotonic cumulative sum; nothing when there are no points.
    fn sum(&mut self, name: &str, description: &str, points: Vec<(Attributes, f64)>) {
        if points.is_empty() {
            return;
        }
        let mut sum = Vec::new();
        for (attributes, value) in &points {
            message(&mut sum, 1, &self.number_point(attributes, *value));
        }
        varint_field(&mut sum, 2, CUMULATIVE);
        varint_field(&mut sum, 3, 1);
        let mut metric = metric_head(name, description, "");
        message(&mut metric, 7, &sum);
        message(&mut self.metrics, 2, &metric);
    }

    fn gauge(&mut self, name: &str, description: &str, points: Vec<(Attributes, f64)>) {
        if points.is_empty() {
            return;
        }
        let mut gauge = Vec::new();
        for (attributes, value) in &points {
            message(&mut gauge, 1, &self.number_point(attributes, *value));
        }
        let mut metric = metric_head(name, description, "");
        message(&mut metric, 5, &gauge);
        message(&mut self.metrics, 2, &metric);
    }

    /// `NumberDataPoint` with a double value.
    fn number_point(&self, attributes: &Attributes, value: f64) -> Vec<u8> {
        let mut point = Vec::new();
        fixed64(&mut point, 2, self.start);
        fixed64(&mut point, 3, self.now);
        double(&mut point, 4, value);
        for (key, value) in attributes {
            message(&mut point, 7, &wire::key_value(key, value));
        }
        point
    }

    /// `HistogramDataPoint` with `bounds`' buckets, summed from the table's finer ones.
    fn histogram_point(
        &self,
        attributes: &Attributes,
        table: &SeriesTable,
        series: &Series,
        bounds: &[f64],
    ) -> Vec<u8> {
        let count = series.requests.load(Ordering::Relaxed);
        let counts = bucket_counts(table.bounds(), series, bounds, count);
        let mut point = Vec::new();
        fixed64(&mut point, 2, self.start);
        fixed64(&mut point, 3, self.now);
        fixed64(&mut point, 4, count);
        double(
            &mut point,
            5,
            series.duration_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        );
        packed_fixed64(&mut point, 6, counts.into_iter());
        packed_fixed64(&mut point, 7, bounds.iter().map(|b| b.to_bits()));
        for (key, value) in attributes {
            message(&mut point, 9, &wire::key_value(key, value));
        }
        point
    }
}

/// `Metric` with its name, description and unit, before its data.
fn metric_head(name: &str, description: &str, unit: &str) -> Vec<u8> {
    let mut metric = Vec::new();
    string(&mut metric, 1, name);
    string(&mut metric, 2, description);
    if !unit.is_empty() {
        string(&mut metric, 3, unit);
    }
    metric
}

/// `code`, `method`, `protocol` and the family's own attributes, sorted by key.
fn attributes(key: SeriesKey, fixed: &Attributes) -> Attributes {
    let mut all = fixed.clone();
    all.push(("code", key.code.to_string()));
    all.push(("method", key.method.as_str().to_string()));
    all.push(("protocol", key.protocol.as_str().to_string()));
    all.sort_by_key(|(k, _)| *k);
    all
}

/// Counts per bucket of `wanted` (one more than bounds: the last is above them all), from the
/// table's per-bucket counts over `table_bounds`, of which `wanted` is a subset.
fn bucket_counts(table_bounds: &[f64], series: &Series, wanted: &[f64], count: u64) -> Vec<u64> {
    let mut counts = Vec::with_capacity(wanted.len() + 1);
    let mut below = 0u64;
    let mut cumulative = 0u64;
    let mut next = wanted.iter().peekable();
    for (bound, bucket) in table_bounds.iter().zip(series.buckets.iter()) {
        cumulative += bucket.load(Ordering::Relaxed);
        if next.peek().is_some_and(|w| *w == bound) {
            next.next();
            counts.push(cumulative - below);
            below = cumulative;
        }
    }
    // Bounds the table lacks (never, by construction) count nothing.
    counts.extend(next.map(|_| 0));
    counts.push(count.saturating_sub(below));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MethodLabel, MetricsSettings, Observation, ProtocolLabel};
    use std::sync::Arc;

    #[test]
    fn defaults_and_options() {
        let settings = OtlpMetricsSettings::from_static(&serde_json::json!({
            "http": {"endpoint": "http://127.0.0.1:4318", "headers": {"x-key": "v"}},
            "pushInterval": "250ms",
            "serviceName": "edge",
        }))
        .unwrap();
        assert_eq!(settings.collector.path, "/v1/metrics");
        assert_eq!(settings.push_interval, Duration::from_millis(250));
        assert_eq!(settings.families.buckets, DEFAULT_BOUNDARIES);
        assert!(settings.families.entry_points && settings.families.services);
        assert!(!settings.families.routers);
        assert_eq!(settings.resource[0], ("service.name".into(), "edge".into()));
        let default = OtlpMetricsSettings::from_static(&serde_json::json!({})).unwrap();
        assert_eq!(default.collector.authority, "localhost:4318");
        assert!(
            default.collector.tls.is_some(),
            "Traefik's default is https"
        );
        let grpc = OtlpMetricsSettings::from_static(&serde_json::json!({"grpc": {}})).unwrap();
        assert_eq!(grpc.collector.transport, crate::otlp::Transport::Grpc);
        assert_eq!(grpc.collector.authority, "localhost:4317");
        assert_eq!(
            grpc.collector.path,
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        );
        assert!(grpc.collector.tls.is_some(), "TLS unless insecure");
        let insecure = OtlpMetricsSettings::from_static(
            &serde_json::json!({"grpc": {"endpoint": "127.0.0.1:14317", "insecure": true}}),
        )
        .unwrap();
        assert_eq!(insecure.collector.authority, "127.0.0.1:14317");
        assert!(insecure.collector.tls.is_none());
        assert!(OtlpMetricsSettings::from_static(
            &serde_json::json!({"grpc": {"endpoint": "127.0.0.1:1/v1"}})
        )
        .is_err());
    }

    #[test]
    fn histogram_buckets_are_sums_of_the_finer_ones() {
        let table = SeriesTable::new(Arc::from(vec![0.1, 0.3, 1.0, 5.0]), Arc::from(Vec::new()));
        for ms in [50, 200, 700, 2000, 9000] {
            table.record(&Observation {
                key: SeriesKey {
                    method: MethodLabel::Get,
                    code: 200,
                    protocol: ProtocolLabel::Http,
                },
                duration: Duration::from_millis(ms),
                request_bytes: 0,
                response_bytes: 0,
            });
        }
        let (_, series) = table.snapshot().remove(0);
        assert_eq!(
            bucket_counts(table.bounds(), &series, &[0.3, 5.0], 5),
            vec![2, 2, 1]
        );
    }

    #[test]
    fn encodes_names_the_collector_can_read() {
        let mut settings = MetricsSettings::prometheus(&[1.0], true, false, true);
        settings.prometheus = None;
        let registry = Registry::new(settings);
        registry.config_reloaded();
        let otlp = OtlpMetricsSettings::from_static(
            &serde_json::json!({"http": {"endpoint": "http://127.0.0.1:9"}}),
        )
        .unwrap();
        let body = export_request(&registry, &otlp, &ScrapeExtras::default(), 1, 2);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("traefik_config_reloads_total"));
        assert!(text.contains("service.name"));
    }
}
