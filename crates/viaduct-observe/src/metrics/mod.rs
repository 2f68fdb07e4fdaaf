//! Prometheus metrics with Traefik's names and labels.
//!
//! The [`Registry`] hands out one [`SeriesTable`] per entry point, router and service; the
//! compiler stores them in the compiled objects, so a request only increments atomics. The
//! registry keeps routers' and services' tables weakly: when no snapshot uses a router any
//! more, its series disappear from the next scrape.

mod influx;
mod otlp;
mod push;
mod render;
mod series;
mod statsd;
mod walk;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use viaduct_config::static_config::Metrics;

pub use influx::{InfluxError, InfluxSettings};
pub use otlp::{OtlpMetricsError, OtlpMetricsSettings};
pub use push::Pusher;
pub use series::{
    LabelledCounts, MethodLabel, Observation, ProtocolLabel, Series, SeriesKey, SeriesTable,
    TlsLabels,
};
pub use statsd::{Destination, Flavor, StatsdError, StatsdSettings};

/// `metrics`, resolved: what the registry counts for all backends together.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    /// The histogram bounds counted: every backend's, merged, so that each backend's
    /// buckets are exact sums of these.
    pub buckets: Vec<f64>,
    /// Series kept per entry point, router and service: when some backend wants them.
    pub entry_points: bool,
    pub routers: bool,
    pub services: bool,
    /// `metrics.addInternals`: count requests to internal services too.
    pub add_internals: bool,
    /// `headerLabels`: (label, request header), sorted by label.
    pub header_labels: Vec<(String, http::HeaderName)>,
    /// `metrics.prometheus`'s own choices, when it is set.
    pub prometheus: Option<BackendSettings>,
    /// `metrics.otlp`, when it is set (and usable).
    pub otlp: Option<OtlpMetricsSettings>,
    /// `metrics.statsD` and `metrics.datadog`, those set (and usable).
    pub statsd: Vec<StatsdSettings>,
    /// `metrics.influxDB2`, when it is set (and usable).
    pub influx: Option<InfluxSettings>,
}

/// What one backend exports: its histogram bounds and which families.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSettings {
    pub buckets: Vec<f64>,
    pub entry_points: bool,
    pub routers: bool,
    pub services: bool,
}

/// All metrics of the process.
#[derive(Debug)]
pub struct Registry {
    settings: MetricsSettings,
    bounds: Arc<[f64]>,
    header_labels: Arc<[String]>,
    entry_points: Mutex<BTreeMap<String, Arc<SeriesTable>>>,
    routers: Mutex<BTreeMap<(String, String), Weak<SeriesTable>>>,
    services: Mutex<BTreeMap<String, Weak<SeriesTable>>>,
    open_connections: Mutex<BTreeMap<String, Arc<ConnectionGauge>>>,
    reloads: AtomicU64,
    /// Unix seconds of the last successful reload, as `f64` bits.
    last_reload_success: AtomicU64,
    /// Reads what the live configuration adds, for exporters that push on their own.
    extras_source: OnceLock<ExtrasSource>,
}

/// A function returning the live [`ScrapeExtras`].
struct ExtrasSource(Box<dyn Fn() -> ScrapeExtras + Send + Sync>);

/// `traefik_open_connections` of one entry point.
#[derive(Debug, Default)]
pub struct ConnectionGauge(AtomicI64);

/// Decrements its gauge when the connection ends.
#[derive(Debug)]
pub struct OpenConnection(Arc<ConnectionGauge>);

/// One server's health for `traefik_service_server_up`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerUp {
    pub service: String,
    pub url: String,
    pub up: bool,
}

/// One certificate for `traefik_tls_certs_not_after`.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateExpiry {
    pub common_name: String,
    pub serial: String,
    /// Comma-separated, as Traefik labels them.
    pub sans: String,
    pub not_after_unix: i64,
}

/// What the registry does not hold itself and reads from the live configuration at scrape time.
#[derive(Debug, Default)]
pub struct ScrapeExtras {
    pub servers: Vec<ServerUp>,
    pub certificates: Vec<CertificateExpiry>,
}

impl MetricsSettings {
    /// `None` unless `metrics.prometheus` or a usable `metrics.otlp` is set. An unusable
    /// `otlp` section is logged and left out.
    pub fn from_static(metrics: &Metrics) -> Option<MetricsSettings> {
        let prometheus = metrics.prometheus.as_ref().map(|p| BackendSettings {
            buckets: sorted_bounds(&p.buckets),
            entry_points: p.add_entry_points_labels,
            routers: p.add_routers_labels,
            services: p.add_services_labels,
        });
        let otlp =
            metrics
                .otlp
                .as_ref()
                .and_then(|value| match OtlpMetricsSettings::from_static(value) {
                    Ok(settings) => Some(settings),
                    Err(e) => {
                        tracing::error!(error = %e, "OTLP metrics are disabled");
                        None
                    }
                });
        let statsd: Vec<StatsdSettings> = [
            (Flavor::Statsd, &metrics.stats_d),
            (Flavor::Datadog, &metrics.datadog),
        ]
        .into_iter()
        .filter_map(|(flavor, value)| {
            let value = value.as_ref()?;
            StatsdSettings::from_static(flavor, value)
                .map_err(|e| tracing::error!(error = %e, "these metrics are disabled"))
                .ok()
        })
        .collect();
        let influx = metrics.influx_db2.as_ref().and_then(|value| {
            InfluxSettings::from_static(value)
                .map_err(|e| tracing::error!(error = %e, "InfluxDB metrics are disabled"))
                .ok()
        });
        if prometheus.is_none() && otlp.is_none() && statsd.is_empty() && influx.is_none() {
            return None;
        }
        let backends: Vec<&BackendSettings> = prometheus
            .iter()
            .chain(otlp.as_ref().map(|o| &o.families))
            .chain(statsd.iter().map(|s| &s.families))
            .chain(influx.iter().map(|i| &i.families))
            .collect();
        let all_bounds: Vec<f64> = backends
            .iter()
            .flat_map(|b| b.buckets.iter().copied())
            .collect();
        let header_labels = metrics
            .prometheus
            .iter()
            .flat_map(|p| p.header_labels.iter())
            .filter_map(|(label, header)| {
                let name = http::HeaderName::from_bytes(header.trim().as_bytes()).ok();
                if name.is_none() {
                    tracing::warn!(label = %label, header = %header, "metrics.prometheus.headerLabels: not a header name; ignored");
                }
                name.map(|n| (label.clone(), n))
            })
            .collect();
        Some(MetricsSettings {
            buckets: sorted_bounds(&all_bounds),
            entry_points: backends.iter().any(|b| b.entry_points),
            routers: backends.iter().any(|b| b.routers),
            services: backends.iter().any(|b| b.services),
            add_internals: metrics.add_internals,
            header_labels,
            prometheus,
            otlp,
            statsd,
            influx,
        })
    }

    /// Prometheus-only settings with these buckets and families (for tests and benches).
    pub fn prometheus(buckets: &[f64], entry_points: bool, routers: bool, services: bool) -> Self {
        let backend = BackendSettings {
            buckets: sorted_bounds(buckets),
            entry_points,
            routers,
            services,
        };
        MetricsSettings {
            buckets: backend.buckets.clone(),
            entry_points,
            routers,
            services,
            add_internals: false,
            header_labels: Vec::new(),
            prometheus: Some(backend),
            otlp: None,
            statsd: Vec::new(),
            influx: None,
        }
    }
}

impl Registry {
    pub fn new(settings: MetricsSettings) -> Registry {
        Registry {
            bounds: Arc::from(settings.buckets.clone()),
            header_labels: settings
                .header_labels
                .iter()
                .map(|(label, _)| label.clone())
                .collect(),
            settings,
            entry_points: Mutex::default(),
            routers: Mutex::default(),
            services: Mutex::default(),
            open_connections: Mutex::default(),
            reloads: AtomicU64::new(0),
            last_reload_success: AtomicU64::new(0),
            extras_source: OnceLock::new(),
        }
    }

    /// Whether `/metrics` (`prometheus@internal`) has anything to serve.
    pub fn serves_prometheus(&self) -> bool {
        self.settings.prometheus.is_some()
    }

    /// Where pushing exporters (OTLP) read server health and certificates from; set once,
    /// when the live configuration exists.
    pub fn set_extras_source(&self, source: impl Fn() -> ScrapeExtras + Send + Sync + 'static) {
        let _ = self.extras_source.set(ExtrasSource(Box::new(source)));
    }

    /// The live [`ScrapeExtras`], or none before a source is set.
    pub fn extras(&self) -> ScrapeExtras {
        self.extras_source
            .get()
            .map_or_else(ScrapeExtras::default, |source| (source.0)())
    }

    pub fn settings(&self) -> &MetricsSettings {
        &self.settings
    }

    /// The entry point's series, unless `addEntryPointsLabels` is off.
    pub fn entry_point(&self, name: &str) -> Option<Arc<SeriesTable>> {
        if !self.settings.entry_points {
            return None;
        }
        let mut all = lock(&self.entry_points);
        Some(
            all.entry(name.to_string())
                .or_insert_with(|| {
                    Arc::new(SeriesTable::new(
                        self.bounds.clone(),
                        self.header_labels.clone(),
                    ))
                })
                .clone(),
        )
    }

    /// The router's series (labelled with its service), unless `addRoutersLabels` is off.
    pub fn router(&self, router: &str, service: &str) -> Option<Arc<SeriesTable>> {
        if !self.settings.routers {
            return None;
        }
        let mut all = lock(&self.routers);
        Some(shared(
            &mut all,
            (router.to_string(), service.to_string()),
            &self.bounds,
            &self.header_labels,
        ))
    }

    /// The service's series, unless `addServicesLabels` is off.
    pub fn service(&self, service: &str) -> Option<Arc<SeriesTable>> {
        if !self.settings.services {
            return None;
        }
        let mut all = lock(&self.services);
        Some(shared(
            &mut all,
            service.to_string(),
            &self.bounds,
            &self.header_labels,
        ))
    }

    /// The open-connections gauge of an entry point (always kept: it is cheap and static).
    pub fn connections(&self, entry_point: &str) -> Arc<ConnectionGauge> {
        lock(&self.open_connections)
            .entry(entry_point.to_string())
            .or_default()
            .clone()
    }

    /// Counts a configuration applied (`traefik_config_reloads_total`,
    /// `traefik_config_last_reload_success`).
    pub fn config_reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_reload_success
            .store(now.to_bits(), Ordering::Relaxed);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, extras: &ScrapeExtras) -> String {
        render::render(self, extras)
    }
}

impl std::fmt::Debug for ExtrasSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtrasSource")
    }
}

impl ConnectionGauge {
    /// Counts a connection open until the returned guard is dropped.
    pub fn open(self: &Arc<Self>) -> OpenConnection {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Finite bounds, sorted, without duplicates.
fn sorted_bounds(bounds: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    sorted
}

/// Locks, ignoring poisoning: the maps stay consistent whatever a panicking holder did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The live table under `key`, or a new one; dead entries are replaced.
fn shared<K: Ord>(
    all: &mut BTreeMap<K, Weak<SeriesTable>>,
    key: K,
    bounds: &Arc<[f64]>,
    header_labels: &Arc<[String]>,
) -> Arc<SeriesTable> {
    if let Some(live) = all.get(&key).and_then(Weak::upgrade) {
        return live;
    }
    let table = Arc::new(SeriesTable::new(bounds.clone(), header_labels.clone()));
    all.insert(key, Arc::downgrade(&table));
    table
}
