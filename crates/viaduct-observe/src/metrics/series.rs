//! Request series: one per (method, status code, protocol) under a family's fixed labels.
//!
//! The request path finds its series without a lock: the first [`FAST_SLOTS`] label
//! combinations a family sees are kept in write-once slots scanned in order; later ones (rare:
//! a router rarely answers with more than a handful of codes) go to a locked map.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Slots searched without a lock before the overflow map.
const FAST_SLOTS: usize = 24;
/// (TLS version, cipher) pairs counted without a lock.
const TLS_SLOTS: usize = 8;

/// The `tls_version` and `tls_cipher` labels, in Go's names (`1.3`,
/// `TLS_AES_128_GCM_SHA256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsLabels {
    pub version: &'static str,
    pub cipher: &'static str,
}

impl TlsLabels {
    /// Go's name of a TLS 1.3 suite from the part after rustls' `TLS13_` prefix.
    pub fn tls13_cipher(rest: &str) -> &'static str {
        match rest {
            "AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
            "AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
            "CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
            _ => "unknown",
        }
    }
}

/// What varies per request in a family's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub method: MethodLabel,
    pub code: u16,
    pub protocol: ProtocolLabel,
}

/// The `method` label. Methods outside the standard ones share one series, labelled `OTHER`,
/// so a client cannot create series at will.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MethodLabel {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Other,
}

/// The `protocol` label, as Traefik classifies requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolLabel {
    Http,
    WebSocket,
    Sse,
    Grpc,
    GrpcWeb,
}

/// The counters of one label combination. `requests` is both the requests counter and the
/// histogram's count.
#[derive(Debug)]
pub struct Series {
    pub(crate) requests: AtomicU64,
    pub(crate) request_bytes: AtomicU64,
    pub(crate) response_bytes: AtomicU64,
    pub(crate) duration_nanos: AtomicU64,
    /// Per bucket (not cumulative; summed when rendered).
    pub(crate) buckets: Box<[AtomicU64]>,
}

/// All series of one family (an entry point, a router or a service).
#[derive(Debug)]
pub struct SeriesTable {
    bounds: Arc<[f64]>,
    fast: [OnceLock<(SeriesKey, Arc<Series>)>; FAST_SLOTS],
    overflow: Mutex<HashMap<SeriesKey, Arc<Series>>>,
    /// Serialises inserts, so one key never takes two slots.
    inserting: Mutex<()>,
    /// `headerLabels`: their names, in label order, and the requests counted per header
    /// values (opt-in, so a lock per request is accepted there).
    header_labels: Arc<[String]>,
    labelled: Mutex<BTreeMap<HeaderSeries, u64>>,
    tls_fast: [OnceLock<(TlsLabels, AtomicU64)>; TLS_SLOTS],
    tls_overflow: Mutex<BTreeMap<TlsLabels, u64>>,
    /// `traefik_service_retries_total` (services' tables only).
    retries: AtomicU64,
}

/// A series key with its `headerLabels` values.
pub type HeaderSeries = (SeriesKey, Box<[String]>);

/// Requests counted with their header label values.
pub type LabelledCounts = Vec<(HeaderSeries, u64)>;

/// One measured exchange.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub key: SeriesKey,
    pub duration: Duration,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl MethodLabel {
    pub fn of(method: &http::Method) -> MethodLabel {
        match *method {
            http::Method::GET => MethodLabel::Get,
            http::Method::HEAD => MethodLabel::Head,
            http::Method::POST => MethodLabel::Post,
            http::Method::PUT => MethodLabel::Put,
            http::Method::DELETE => MethodLabel::Delete,
            http::Method::CONNECT => MethodLabel::Connect,
            http::Method::OPTIONS => MethodLabel::Options,
            http::Method::TRACE => MethodLabel::Trace,
            http::Method::PATCH => MethodLabel::Patch,
            _ => MethodLabel::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MethodLabel::Get => "GET",
            MethodLabel::Head => "HEAD",
            MethodLabel::Post => "POST",
            MethodLabel::Put => "PUT",
            MethodLabel::Delete => "DELETE",
            MethodLabel::Connect => "CONNECT",
            MethodLabel::Options => "OPTIONS",
            MethodLabel::Trace => "TRACE",
            MethodLabel::Patch => "PATCH",
            MethodLabel::Other => "OTHER",
        }
    }
}

impl ProtocolLabel {
    /// Traefik's classification: WebSocket upgrades, server-sent events, gRPC and gRPC-Web by
    /// content type; everything else is `http`.
    pub fn of(headers: &http::HeaderMap) -> ProtocolLabel {
        if headers
            .get(http::header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        {
            return ProtocolLabel::WebSocket;
        }
        if headers
            .get(http::header::ACCEPT)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
        {
            return ProtocolLabel::Sse;
        }
        match headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes())
        {
            Some(ct) if ct.starts_with(b"application/grpc-web") => ProtocolLabel::GrpcWeb,
            Some(ct) if ct.starts_with(b"application/grpc") => ProtocolLabel::Grpc,
            _ => ProtocolLabel::Http,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolLabel::Http => "http",
            ProtocolLabel::WebSocket => "websocket",
            ProtocolLabel::Sse => "sse",
            ProtocolLabel::Grpc => "grpc",
            ProtocolLabel::GrpcWeb => "grpc-web",
        }
    }
}

impl Series {
    fn new(buckets: usize) -> Series {
        Series {
            requests: AtomicU64::new(0),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            duration_nanos: AtomicU64::new(0),
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl SeriesTable {
    pub fn new(bounds: Arc<[f64]>, header_labels: Arc<[String]>) -> SeriesTable {
        SeriesTable {
            bounds,
            fast: std::array::from_fn(|_| OnceLock::new()),
            overflow: Mutex::new(HashMap::new()),
            inserting: Mutex::new(()),
            header_labels,
            labelled: Mutex::new(BTreeMap::new()),
            tls_fast: std::array::from_fn(|_| OnceLock::new()),
            tls_overflow: Mutex::new(BTreeMap::new()),
            retries: AtomicU64::new(0),
        }
    }

    /// Counts requests sent again by the `retry` middleware.
    pub fn count_retries(&self, retries: u32) {
        if retries > 0 {
            self.retries
                .fetch_add(u64::from(retries), Ordering::Relaxed);
        }
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Counts a request over TLS (`*_requests_tls_total`).
    pub fn count_tls(&self, labels: TlsLabels) {
        for slot in &self.tls_fast {
            match slot.get() {
                Some((l, count)) if *l == labels => {
                    count.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(_) => continue,
                None => break,
            }
        }
        let _guard = self.inserting.lock().unwrap_or_else(|e| e.into_inner());
        for slot in &self.tls_fast {
            match slot.get() {
                Some((l, count)) if *l == labels => {
                    count.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(_) => continue,
                None => {
                    let _ = slot.set((labels, AtomicU64::new(1)));
                    return;
                }
            }
        }
        let mut overflow = self.tls_overflow.lock().unwrap_or_else(|e| e.into_inner());
        *overflow.entry(labels).or_default() += 1;
    }

    /// Requests over TLS by version and cipher, sorted.
    pub fn tls_counts(&self) -> Vec<(TlsLabels, u64)> {
        let mut all: Vec<(TlsLabels, u64)> = self
            .tls_fast
            .iter()
            .map_while(|slot| slot.get().map(|(l, c)| (*l, c.load(Ordering::Relaxed))))
            .collect();
        if let Ok(overflow) = self.tls_overflow.lock() {
            all.extend(overflow.iter().map(|(l, c)| (*l, *c)));
        }
        all.sort();
        all
    }

    /// Counts a request under its `headerLabels` values (in [`Self::header_labels`] order).
    pub fn count_with_headers(&self, key: SeriesKey, values: &[String]) {
        let mut labelled = self.labelled.lock().unwrap_or_else(|e| e.into_inner());
        *labelled.entry((key, values.into())).or_default() += 1;
    }

    pub fn header_labels(&self) -> &[String] {
        &self.header_labels
    }

    pub fn labelled_counts(&self) -> LabelledCounts {
        let labelled = self.labelled.lock().unwrap_or_else(|e| e.into_inner());
        labelled.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Counts one exchange.
    pub fn record(&self, observation: &Observation) {
        let series = self.series(observation.key);
        series.requests.fetch_add(1, Ordering::Relaxed);
        series
            .request_bytes
            .fetch_add(observation.request_bytes, Ordering::Relaxed);
        series
            .response_bytes
            .fetch_add(observation.response_bytes, Ordering::Relaxed);
        let nanos = u64::try_from(observation.duration.as_nanos()).unwrap_or(u64::MAX);
        series.duration_nanos.fetch_add(nanos, Ordering::Relaxed);
        let seconds = observation.duration.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|le| seconds <= *le) {
            if let Some(bucket) = series.buckets.get(i) {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Every series, sorted by key (the exposition's order).
    pub fn snapshot(&self) -> Vec<(SeriesKey, Arc<Series>)> {
        let mut all: Vec<(SeriesKey, Arc<Series>)> = self
            .fast
            .iter()
            .map_while(|slot| slot.get().cloned())
            .collect();
        if let Ok(overflow) = self.overflow.lock() {
            all.extend(overflow.iter().map(|(k, s)| (*k, s.clone())));
        }
        all.sort_by_key(|(key, _)| *key);
        all
    }

    fn series(&self, key: SeriesKey) -> Arc<Series> {
        for slot in &self.fast {
            match slot.get() {
                Some((k, series)) if *k == key => return series.clone(),
                Some(_) => continue,
                None => break,
            }
        }
        self.insert(key)
    }

    fn insert(&self, key: SeriesKey) -> Arc<Series> {
        // A poisoned lock only means another thread panicked mid-insert; the table is intact.
        let _guard = self.inserting.lock().unwrap_or_else(|e| e.into_inner());
        for slot in &self.fast {
            match slot.get() {
                Some((k, series)) if *k == key => return series.clone(),
                Some(_) => continue,
                None => {
                    let series = Arc::new(Series::new(self.bounds.len()));
                    let _ = slot.set((key, series.clone()));
                    return series;
                }
            }
        }
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        overflow
            .entry(key)
            .or_insert_with(|| Arc::new(Series::new(self.bounds.len())))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: u16) -> SeriesKey {
        SeriesKey {
            method: MethodLabel::Get,
            code,
            protocol: ProtocolLabel::Http,
        }
    }

    #[test]
    fn counts_land_in_their_series_and_bucket() {
        let table = SeriesTable::new(Arc::from(vec![0.1, 0.3, 1.2, 5.0]), Arc::from(Vec::new()));
        for (code, ms) in [(200, 50), (200, 200), (404, 7000)] {
            table.record(&Observation {
                key: key(code),
                duration: Duration::from_millis(ms),
                request_bytes: 3,
                response_bytes: 10,
            });
        }
        let all = table.snapshot();
        assert_eq!(all.len(), 2);
        let ok = &all[0].1;
        assert_eq!(ok.requests.load(Ordering::Relaxed), 2);
        assert_eq!(ok.request_bytes.load(Ordering::Relaxed), 6);
        let buckets: Vec<u64> = ok
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(buckets, vec![1, 1, 0, 0]);
        let slow = &all[1].1;
        assert!(slow.buckets.iter().all(|b| b.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn many_codes_spill_into_the_overflow_map() {
        let table = SeriesTable::new(Arc::from(vec![1.0]), Arc::from(Vec::new()));
        for code in 100..200 {
            for _ in 0..2 {
                table.record(&Observation {
                    key: key(code),
                    duration: Duration::ZERO,
                    request_bytes: 0,
                    response_bytes: 0,
                });
            }
        }
        let all = table.snapshot();
        assert_eq!(all.len(), 100);
        assert!(all
            .iter()
            .all(|(_, s)| s.requests.load(Ordering::Relaxed) == 2));
    }
}
