//! Prometheus metrics with Traefik's names and labels.
//!
//! The [`Registry`] hands out one [`SeriesTable`] per entry point, router and service; the
//! compiler stores them in the compiled objects, so a request only increments atomics. The
//! registry keeps routers' and services' tables weakly: when no snapshot uses a router any
//! more, its series disappear from the next scrape.

mod render;
mod series;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use viaduct_config::static_config::Metrics;

pub use series::{
    LabelledCounts, MethodLabel, Observation, ProtocolLabel, Series, SeriesKey, SeriesTable,
    TlsLabels,
};

/// `metrics.prometheus`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    pub buckets: Vec<f64>,
    pub entry_points: bool,
    pub routers: bool,
    pub services: bool,
    /// `metrics.addInternals`: count requests to internal services too.
    pub add_internals: bool,
    /// `headerLabels`: (label, request header), sorted by label.
    pub header_labels: Vec<(String, http::HeaderName)>,
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
}

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
    /// `None` unless `metrics.prometheus` is set (the only backend built).
    pub fn from_static(metrics: &Metrics) -> Option<MetricsSettings> {
        let prometheus = metrics.prometheus.as_ref()?;
        let mut buckets: Vec<f64> = prometheus
            .buckets
            .iter()
            .copied()
            .filter(|b| b.is_finite())
            .collect();
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        Some(MetricsSettings {
            buckets,
            entry_points: prometheus.add_entry_points_labels,
            routers: prometheus.add_routers_labels,
            services: prometheus.add_services_labels,
            add_internals: metrics.add_internals,
            header_labels: prometheus
                .header_labels
                .iter()
                .filter_map(|(label, header)| {
                    let name = http::HeaderName::from_bytes(header.trim().as_bytes()).ok();
                    if name.is_none() {
                        tracing::warn!(label = %label, header = %header, "metrics.prometheus.headerLabels: not a header name; ignored");
                    }
                    name.map(|n| (label.clone(), n))
                })
                .collect(),
        })
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
        }
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
