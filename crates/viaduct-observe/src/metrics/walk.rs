//! What the pushing backends that send increases (StatsD, Datadog, InfluxDB) share: one walk
//! over the registry that hands every series to a [`Sink`], and [`Increases`], which turns
//! the registry's cumulative counts into what changed since the last push.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use viaduct_config::GoDuration;

use super::{lock, BackendSettings, Registry, ScrapeExtras, SeriesTable};

/// Traefik's default `pushInterval` for every pushing backend.
const DEFAULT_PUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The duration buckets of the backends that have no bucket option (StatsD, Datadog, InfluxDB):
/// finer than Prometheus' defaults, since a duration is reported to within its bucket.
pub(super) const FINE_BOUNDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The options every pushing backend has (flattened into each one's own).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PushOptions {
    #[serde(default = "yes")]
    add_entry_points_labels: bool,
    #[serde(default)]
    add_routers_labels: bool,
    #[serde(default = "yes")]
    add_services_labels: bool,
    #[serde(default)]
    push_interval: Option<GoDuration>,
}

fn yes() -> bool {
    true
}

impl PushOptions {
    /// The families to send, with these duration buckets.
    pub(super) fn families(&self, buckets: Vec<f64>) -> BackendSettings {
        BackendSettings {
            buckets,
            entry_points: self.add_entry_points_labels,
            routers: self.add_routers_labels,
            services: self.add_services_labels,
        }
    }

    /// `pushInterval`, Traefik's default when unset or not positive.
    pub(super) fn push_interval(&self) -> std::time::Duration {
        self.push_interval
            .and_then(GoDuration::positive)
            .unwrap_or(DEFAULT_PUSH_INTERVAL)
    }
}

/// Whose requests a series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    EntryPoint,
    Router,
    Service,
}

impl Family {
    /// The word in Traefik's dotted names (`entrypoint.request.total`).
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Family::EntryPoint => "entrypoint",
            Family::Router => "router",
            Family::Service => "service",
        }
    }
}

/// Every metric Traefik's pushing backends send; each backend names them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    ConfigReloads,
    LastReloadSuccess,
    OpenConnections,
    CertificateNotAfter,
    Requests(Family),
    RequestsTls(Family),
    RequestDuration(Family),
    RequestBytes(Family),
    ResponseBytes(Family),
    ServiceRetries,
    ServerUp,
}

impl Metric {
    /// Traefik's dotted name for StatsD and Datadog (`entrypoint.request.total`), without
    /// the prefix.
    pub(super) fn dotted_name(self) -> String {
        match self {
            Metric::ConfigReloads => "config.reload.total".into(),
            Metric::LastReloadSuccess => "config.reload.lastSuccessTimestamp".into(),
            Metric::OpenConnections => "open.connections".into(),
            Metric::CertificateNotAfter => "tls.certs.notAfterTimestamp".into(),
            Metric::Requests(f) => format!("{}.request.total", f.as_str()),
            Metric::RequestsTls(f) => format!("{}.request.tls.total", f.as_str()),
            Metric::RequestDuration(f) => format!("{}.request.duration", f.as_str()),
            Metric::RequestBytes(f) => format!("{}.requests.bytes.total", f.as_str()),
            Metric::ResponseBytes(f) => format!("{}.responses.bytes.total", f.as_str()),
            Metric::ServiceRetries => "service.retries.total".into(),
            Metric::ServerUp => "service.server.up".into(),
        }
    }
}

/// Labels, sorted by name.
pub(super) type Tags<'a> = [(&'a str, &'a str)];

/// Receives the series of one push.
pub(super) trait Sink {
    /// A cumulative count.
    fn counter(&mut self, metric: Metric, tags: &Tags<'_>, total: u64);
    fn gauge(&mut self, metric: Metric, tags: &Tags<'_>, value: f64);
    /// Request durations: cumulative counts per bucket (`bounds` in seconds; one more bucket
    /// than bounds, for the overflow).
    fn durations(&mut self, metric: Metric, tags: &Tags<'_>, bounds: &[f64], buckets: &[AtomicU64]);
}

/// Hands every series of the families `families` asks for to `sink`.
pub(super) fn walk(
    registry: &Registry,
    extras: &ScrapeExtras,
    families: &BackendSettings,
    sink: &mut impl Sink,
) {
    sink.counter(
        Metric::ConfigReloads,
        &[],
        registry.reloads.load(Ordering::Relaxed),
    );
    let last_reload = f64::from_bits(registry.last_reload_success.load(Ordering::Relaxed));
    if last_reload > 0.0 {
        sink.gauge(Metric::LastReloadSuccess, &[], last_reload);
    }
    let connections: Vec<(String, i64)> = lock(&registry.open_connections)
        .iter()
        .map(|(entry_point, gauge)| (entry_point.clone(), gauge.get()))
        .collect();
    for (entry_point, open) in &connections {
        let tags = [("entrypoint", entry_point.as_str()), ("protocol", "TCP")];
        sink.gauge(Metric::OpenConnections, &tags, *open as f64);
    }
    for cert in &extras.certificates {
        let tags = [
            ("cn", cert.common_name.as_str()),
            ("sans", cert.sans.as_str()),
            ("serial", cert.serial.as_str()),
        ];
        sink.gauge(
            Metric::CertificateNotAfter,
            &tags,
            cert.not_after_unix as f64,
        );
    }

    if families.entry_points {
        let tables: Vec<(String, Arc<SeriesTable>)> = lock(&registry.entry_points)
            .iter()
            .map(|(name, table)| (name.clone(), table.clone()))
            .collect();
        for (name, table) in &tables {
            requests(sink, Family::EntryPoint, &[("entrypoint", name)], table);
        }
    }
    if families.routers {
        let tables: Vec<((String, String), Arc<SeriesTable>)> = lock(&registry.routers)
            .iter()
            .filter_map(|(key, weak)| Some((key.clone(), weak.upgrade()?)))
            .collect();
        for ((router, service), table) in &tables {
            requests(
                sink,
                Family::Router,
                &[("router", router), ("service", service)],
                table,
            );
        }
    }
    if families.services {
        let tables: Vec<(String, Arc<SeriesTable>)> = lock(&registry.services)
            .iter()
            .filter_map(|(name, weak)| Some((name.clone(), weak.upgrade()?)))
            .collect();
        for (service, table) in &tables {
            requests(sink, Family::Service, &[("service", service)], table);
            sink.counter(
                Metric::ServiceRetries,
                &[("service", service)],
                table.retries(),
            );
        }
        for server in &extras.servers {
            let tags = [
                ("service", server.service.as_str()),
                ("url", server.url.as_str()),
            ];
            sink.gauge(Metric::ServerUp, &tags, if server.up { 1.0 } else { 0.0 });
        }
    }
}

/// The request series of one entry point, router or service.
fn requests(sink: &mut impl Sink, family: Family, fixed: &[(&str, &String)], table: &SeriesTable) {
    let fixed: Vec<(&str, &str)> = fixed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (key, series) in table.snapshot() {
        let code = key.code.to_string();
        let mut tags = fixed.clone();
        tags.extend([
            ("code", code.as_str()),
            ("method", key.method.as_str()),
            ("protocol", key.protocol.as_str()),
        ]);
        tags.sort_by_key(|(k, _)| *k);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        sink.counter(Metric::Requests(family), &tags, load(&series.requests));
        sink.counter(
            Metric::RequestBytes(family),
            &tags,
            load(&series.request_bytes),
        );
        sink.counter(
            Metric::ResponseBytes(family),
            &tags,
            load(&series.response_bytes),
        );
        sink.durations(
            Metric::RequestDuration(family),
            &tags,
            table.bounds(),
            &series.buckets,
        );
    }
    for (tls, count) in table.tls_counts() {
        let mut tags = fixed.clone();
        tags.extend([("tls_cipher", tls.cipher), ("tls_version", tls.version)]);
        tags.sort_by_key(|(k, _)| *k);
        sink.counter(Metric::RequestsTls(family), &tags, count);
    }
}

/// Cumulative counts as of the last push and of this one; only the series seen in this push
/// are kept for the next, so a removed router's are forgotten.
#[derive(Debug, Default)]
pub(super) struct Increases {
    previous: HashMap<String, u64>,
    current: HashMap<String, u64>,
}

impl Increases {
    /// Starts a push.
    pub(super) fn begin(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Records `total` for the series `key`, returning its increase since the last push. A
    /// count that went down belongs to a new object of the same name: all of it is new.
    pub(super) fn advance(&mut self, key: String, total: u64) -> u64 {
        let before = self.previous.get(&key).copied().unwrap_or(0);
        self.current.insert(key, total);
        if total >= before {
            total - before
        } else {
            total
        }
    }

    /// The per-bucket increases of a duration series since the last push.
    pub(super) fn advance_buckets(&mut self, key: &str, buckets: &[AtomicU64]) -> Vec<u64> {
        buckets
            .iter()
            .enumerate()
            .map(|(index, bucket)| {
                self.advance(format!("{key}#{index}"), bucket.load(Ordering::Relaxed))
            })
            .collect()
    }
}

/// What identifies a series between pushes: its metric and all its labels, whether or not the
/// backend sends them.
pub(super) fn series_key(metric: Metric, tags: &Tags<'_>) -> String {
    let mut key = format!("{metric:?}");
    for (k, v) in tags {
        let _ = write!(key, "\u{0}{k}={v}");
    }
    key
}
