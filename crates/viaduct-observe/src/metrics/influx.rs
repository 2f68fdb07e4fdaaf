//! `metrics.influxDB2`: the registry written every `pushInterval` to InfluxDB 2's
//! `/api/v2/write` in line protocol, with Traefik's measurement names
//! (`traefik.entrypoint.requests.total`, …) and fields.
//!
//! As Traefik's go-kit writer does: a counter's point carries `count`, its increase since the
//! last write; a gauge's carries `value`; a duration's carries the quantiles `p50`, `p90`, `p95`
//! and `p99` (seconds) of the requests since the last write — here read from the duration
//! buckets, interpolated within a bucket as Prometheus' `histogram_quantile` does. Tags are the
//! Prometheus labels and `additionalLabels`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::walk::{series_key, walk, Increases, Metric, PushOptions, Sink, Tags, FINE_BOUNDS};
use super::{BackendSettings, Registry, ScrapeExtras};
use crate::otlp::Collector;

/// Traefik's default `address`.
const DEFAULT_ADDRESS: &str = "http://localhost:8086";
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)];

/// `metrics.influxDB2`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxSettings {
    pub families: BackendSettings,
    pub push_interval: Duration,
    /// `POST <address>/api/v2/write?org=…&bucket=…&precision=ns` with `Authorization: Token …`.
    pub collector: Collector,
    /// `additionalLabels`: tags on every point.
    pub additional_labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    #[error("metrics.influxDB2: {0}")]
    Options(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInflux {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    bucket: String,
    #[serde(flatten)]
    common: PushOptions,
    #[serde(default)]
    additional_labels: BTreeMap<String, String>,
}

impl InfluxSettings {
    pub fn from_static(value: &serde_json::Value) -> Result<InfluxSettings, InfluxError> {
        let raw: RawInflux = serde_json::from_value(if value.is_null() {
            serde_json::json!({})
        } else {
            value.clone()
        })
        .map_err(|e| InfluxError::Options(e.to_string()))?;
        // As Traefik: the three are required.
        if raw.token.is_empty() || raw.org.is_empty() || raw.bucket.is_empty() {
            return Err(InfluxError::Options(
                "token, org or bucket property is missing".into(),
            ));
        }
        let address = raw
            .address
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ADDRESS.into());
        let headers = vec![("Authorization".to_string(), format!("Token {}", raw.token))];
        let mut collector = Collector::from_endpoint(&address, "/", headers, None)
            .map_err(|reason| InfluxError::Options(format!("address {address:?}: {reason}")))?;
        collector.path = format!(
            "{}/api/v2/write?org={}&bucket={}&precision=ns",
            collector.path.trim_end_matches('/'),
            query_escape(&raw.org),
            query_escape(&raw.bucket)
        );
        Ok(InfluxSettings {
            families: raw.common.families(FINE_BOUNDS.to_vec()),
            push_interval: raw.common.push_interval(),
            collector,
            additional_labels: raw.additional_labels,
        })
    }
}

/// Writes one registry's metrics to one InfluxDB; remembers what it wrote, to write increases.
pub(super) struct InfluxExporter {
    settings: InfluxSettings,
    increases: Increases,
}

impl InfluxExporter {
    pub(super) fn new(settings: InfluxSettings) -> InfluxExporter {
        InfluxExporter {
            settings,
            increases: Increases::default(),
        }
    }

    /// One write; nothing is sent when nothing changed.
    pub(super) fn push(
        &mut self,
        registry: &Registry,
        extras: &ScrapeExtras,
    ) -> std::io::Result<()> {
        let body = self.body(registry, extras, unix_nanos());
        if body.is_empty() {
            return Ok(());
        }
        self.settings
            .collector
            .post_as("text/plain; charset=utf-8", body.as_bytes())
    }

    /// The line-protocol body of this write, every point stamped `now` (Unix nanoseconds).
    pub(super) fn body(&mut self, registry: &Registry, extras: &ScrapeExtras, now: u128) -> String {
        self.increases.begin();
        let mut points = Points {
            increases: &mut self.increases,
            additional: &self.settings.additional_labels,
            now,
            body: String::new(),
        };
        walk(registry, extras, &self.settings.families, &mut points);
        points.body
    }
}

/// The points of one write.
struct Points<'a> {
    increases: &'a mut Increases,
    additional: &'a BTreeMap<String, String>,
    now: u128,
    body: String,
}

/// Traefik's InfluxDB measurement names: the StatsD names under `traefik.`, except that request
/// counts say `requests`.
fn measurement(metric: Metric) -> String {
    match metric {
        Metric::Requests(f) => format!("traefik.{}.requests.total", f.as_str()),
        Metric::RequestsTls(f) => format!("traefik.{}.requests.tls.total", f.as_str()),
        other => format!("traefik.{}", other.dotted_name()),
    }
}

impl Sink for Points<'_> {
    fn counter(&mut self, metric: Metric, tags: &Tags<'_>, total: u64) {
        let increase = self.increases.advance(series_key(metric, tags), total);
        if increase > 0 {
            self.point(metric, tags, &[("count", increase as f64)]);
        }
    }

    fn gauge(&mut self, metric: Metric, tags: &Tags<'_>, value: f64) {
        self.point(metric, tags, &[("value", value)]);
    }

    fn durations(
        &mut self,
        metric: Metric,
        tags: &Tags<'_>,
        bounds: &[f64],
        buckets: &[AtomicU64],
    ) {
        let counts = self
            .increases
            .advance_buckets(&series_key(metric, tags), buckets);
        if counts.iter().all(|&c| c == 0) {
            return;
        }
        let fields: Vec<(&str, f64)> = QUANTILES
            .iter()
            .map(|&(field, q)| (field, quantile(q, bounds, &counts)))
            .collect();
        self.point(metric, tags, &fields);
    }
}

impl Points<'_> {
    fn point(&mut self, metric: Metric, tags: &Tags<'_>, fields: &[(&str, f64)]) {
        let mut all: BTreeMap<&str, &str> = self
            .additional
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend(tags.iter().copied());
        let body = &mut self.body;
        body.push_str(&escape(&measurement(metric), &[',', ' ']));
        for (key, value) in all {
            if value.is_empty() {
                continue; // line protocol has no empty tag values
            }
            let _ = write!(
                body,
                ",{}={}",
                escape(key, &[',', '=', ' ']),
                escape(value, &[',', '=', ' '])
            );
        }
        for (i, (field, value)) in fields.iter().enumerate() {
            let _ = write!(body, "{}{field}={value}", if i == 0 { ' ' } else { ',' });
        }
        let _ = writeln!(body, " {}", self.now);
    }
}

/// The `q` quantile of the requests counted per bucket, interpolated linearly within its
/// bucket; the overflow bucket reads as the last finite bound.
fn quantile(q: f64, bounds: &[f64], counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let rank = q * total as f64;
    let mut below = 0u64;
    for (index, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let Some(&upper) = bounds.get(index) else {
                return bounds.last().copied().unwrap_or(0.0);
            };
            let lower = if index == 0 { 0.0 } else { bounds[index - 1] };
            let within = (rank - below as f64) / count as f64;
            return lower + (upper - lower) * within.clamp(0.0, 1.0);
        }
        below += count;
    }
    bounds.last().copied().unwrap_or(0.0)
}

/// Backslash before each of `special` (line protocol's escaping).
fn escape(text: &str, special: &[char]) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if special.contains(&c) || c == '\\' {
            escaped.push('\\');
        }
        if c == '\n' {
            escaped.push_str("\\n");
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Percent-encodes a query parameter value.
fn query_escape(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{
        MethodLabel, MetricsSettings, Observation, ProtocolLabel, SeriesKey, SeriesTable,
    };

    fn exporter(options: serde_json::Value) -> (Registry, InfluxExporter) {
        let settings = InfluxSettings::from_static(&options).unwrap();
        let mut metrics = MetricsSettings::prometheus(&FINE_BOUNDS, true, false, true);
        metrics.prometheus = None;
        metrics.influx = Some(settings.clone());
        (Registry::new(metrics), InfluxExporter::new(settings))
    }

    fn request(table: &SeriesTable, millis: u64) {
        table.record(&Observation {
            key: SeriesKey {
                method: MethodLabel::Post,
                code: 201,
                protocol: ProtocolLabel::Http,
            },
            duration: Duration::from_millis(millis),
            request_bytes: 5,
            response_bytes: 7,
        });
    }

    #[test]
    fn options() {
        let settings = InfluxSettings::from_static(&serde_json::json!({
            "address": "https://influx.example:8086/base/",
            "token": "t0k", "org": "my org", "bucket": "b",
            "additionalLabels": {"host": "edge-1"},
        }))
        .unwrap();
        assert_eq!(settings.collector.authority, "influx.example:8086");
        assert_eq!(
            settings.collector.path,
            "/base/api/v2/write?org=my%20org&bucket=b&precision=ns"
        );
        assert!(settings.collector.tls.is_some());
        assert_eq!(
            settings.collector.headers,
            [("Authorization".to_string(), "Token t0k".to_string())]
        );
        let default = InfluxSettings::from_static(
            &serde_json::json!({"token": "t", "org": "o", "bucket": "b"}),
        )
        .unwrap();
        assert_eq!(default.collector.authority, "localhost:8086");
        assert_eq!(
            default.collector.path,
            "/api/v2/write?org=o&bucket=b&precision=ns"
        );
        let err = InfluxSettings::from_static(&serde_json::json!({"token": "t"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metrics.influxDB2: token, org or bucket property is missing"
        );
    }

    #[test]
    fn points_carry_increases_values_and_quantiles() {
        let (registry, mut exporter) = exporter(serde_json::json!({
            "token": "t", "org": "o", "bucket": "b", "additionalLabels": {"host": "edge 1"},
        }));
        registry.config_reloaded();
        let web = registry.entry_point("web").unwrap();
        for millis in [1, 2, 3, 4, 40, 40, 40, 40, 40, 200] {
            request(&web, millis);
        }
        let body = exporter.body(&registry, &ScrapeExtras::default(), 42);
        let tags = "code=201,entrypoint=web,host=edge\\ 1,method=POST,protocol=http";
        for expected in [
            "traefik.config.reload.total,host=edge\\ 1 count=1 42".to_string(),
            format!("traefik.entrypoint.requests.total,{tags} count=10 42"),
            format!("traefik.entrypoint.requests.bytes.total,{tags} count=50 42"),
            format!("traefik.entrypoint.responses.bytes.total,{tags} count=70 42"),
        ] {
            assert!(
                body.lines().any(|l| l == expected),
                "{expected} not in\n{body}"
            );
        }
        let duration = body
            .lines()
            .find(|l| l.starts_with("traefik.entrypoint.request.duration,"))
            .unwrap();
        // Four requests took up to 5 ms, five 40 ms, one 200 ms: the median and the 90th
        // percentile fall in the (25 ms, 50 ms] bucket, the 99th in (100 ms, 250 ms].
        let field = |name: &str| -> f64 {
            // The fields follow the first unescaped space; tags here contain an escaped one.
            let start = duration.find(" p50=").unwrap() + 1;
            let fields = duration[start..].split(' ').next().unwrap();
            fields
                .split(',')
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(field("p50") > 0.025 && field("p50") <= 0.05, "{duration}");
        assert!(field("p90") > 0.025 && field("p90") <= 0.05, "{duration}");
        assert!(field("p99") > 0.1 && field("p99") <= 0.25, "{duration}");

        // Nothing new: no counter points, and no duration point.
        let body = exporter.body(&registry, &ScrapeExtras::default(), 43);
        assert!(!body.contains("count="), "{body}");
        assert!(!body.contains("request.duration"), "{body}");
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let bounds = [0.1, 0.2];
        assert!((quantile(0.5, &bounds, &[0, 2, 0]) - 0.15).abs() < 1e-9);
        assert_eq!(quantile(1.0, &bounds, &[1, 0, 0]), 0.1);
        assert_eq!(quantile(0.99, &bounds, &[0, 0, 3]), 0.2, "overflow");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a,b c=d", &[',', '=', ' ']), "a\\,b\\ c\\=d");
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }
}
