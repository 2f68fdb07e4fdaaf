//! `metrics.statsD` and `metrics.datadog`: the registry pushed every `pushInterval` as StatsD
//! lines over UDP (or, for Datadog, a Unix socket), with Traefik's dotted names
//! (`traefik.entrypoint.request.total`, `traefik.service.server.up`, …).
//!
//! As Traefik's go-kit clients do, counters are sent as the increase since the last push, gauges
//! as their value, and request durations as timings: milliseconds (`|ms`) for StatsD, seconds in
//! a histogram (`|h`) for Datadog. StatsD has no tags, so its series of one name are summed;
//! Datadog tags each line with the Prometheus labels (`|#code:200,entrypoint:web,…`).
//!
//! Durations are counted in buckets, never one by one on the request path, so a push sends one
//! timing per bucket that received requests: the bucket's upper bound, with the sample rate
//! `1/count` (`|@0.25` for four requests), which StatsD servers and the Datadog agent count as
//! that many observations. Counts and rates are exact; a percentile is exact to its bucket.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::Deserialize;

use super::walk::{series_key, walk, Increases, Metric, PushOptions, Sink, Tags, FINE_BOUNDS};
use super::{BackendSettings, Registry, ScrapeExtras};

/// Below the usual path MTU, so that no datagram is fragmented.
const UDP_PAYLOAD: usize = 1432;
/// The Datadog agent's default buffer for Unix datagrams.
const UNIX_PAYLOAD: usize = 8192;

/// Which client Traefik would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `metrics.statsD`: no tags, timings in milliseconds.
    Statsd,
    /// `metrics.datadog`: DogStatsD tags, durations as histograms in seconds.
    Datadog,
}

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Udp(String),
    UnixDatagram(PathBuf),
    UnixStream(PathBuf),
}

/// `metrics.statsD` or `metrics.datadog`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsdSettings {
    pub flavor: Flavor,
    pub families: BackendSettings,
    pub push_interval: Duration,
    /// Every name starts with it and a dot (`traefik`).
    pub prefix: String,
    pub destination: Destination,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsdError {
    #[error("metrics.{section}: {message}")]
    Options {
        section: &'static str,
        message: String,
    },
    #[error("metrics.{section}: sending to {destination:?}: {source}")]
    Send {
        section: &'static str,
        destination: Destination,
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatsd {
    #[serde(default)]
    address: Option<String>,
    #[serde(flatten)]
    common: PushOptions,
    #[serde(default)]
    prefix: Option<String>,
}

impl Flavor {
    fn section(self) -> &'static str {
        match self {
            Flavor::Statsd => "statsD",
            Flavor::Datadog => "datadog",
        }
    }
}

impl StatsdSettings {
    pub fn from_static(
        flavor: Flavor,
        value: &serde_json::Value,
    ) -> Result<StatsdSettings, StatsdError> {
        let section = flavor.section();
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value.clone()
        };
        let raw: RawStatsd = serde_json::from_value(value).map_err(|e| StatsdError::Options {
            section,
            message: e.to_string(),
        })?;
        let address = raw.address.filter(|a| !a.trim().is_empty());
        let destination = match flavor {
            Flavor::Statsd => Destination::Udp(address.unwrap_or_else(|| "localhost:8125".into())),
            Flavor::Datadog => datadog_destination(address),
        };
        Ok(StatsdSettings {
            flavor,
            families: raw.common.families(FINE_BOUNDS.to_vec()),
            push_interval: raw.common.push_interval(),
            prefix: raw
                .prefix
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "traefik".into()),
            destination,
        })
    }
}

/// Traefik's Datadog addresses: `unix://`, `unixgram://`, `unixstream://` or `host:port`;
/// without one, `DD_AGENT_HOST`:`DD_DOGSTATSD_PORT` (default `localhost:8125`).
fn datadog_destination(address: Option<String>) -> Destination {
    let Some(address) = address else {
        let host = std::env::var("DD_AGENT_HOST").unwrap_or_else(|_| "localhost".into());
        let port = std::env::var("DD_DOGSTATSD_PORT").unwrap_or_else(|_| "8125".into());
        return Destination::Udp(join_host_port(&host, &port));
    };
    if let Some(path) = address.strip_prefix("unixstream://") {
        Destination::UnixStream(path.into())
    } else if let Some(path) = address
        .strip_prefix("unixgram://")
        .or_else(|| address.strip_prefix("unix://"))
    {
        Destination::UnixDatagram(path.into())
    } else {
        Destination::Udp(address)
    }
}

fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Pushes one registry's metrics to one destination; remembers what it sent, to send counters'
/// increases.
pub(super) struct StatsdExporter {
    settings: StatsdSettings,
    increases: Increases,
    socket: Option<Socket>,
}

enum Socket {
    Udp(UdpSocket),
    UnixDatagram(UnixDatagram),
    UnixStream(UnixStream),
}

impl StatsdExporter {
    pub(super) fn new(settings: StatsdSettings) -> StatsdExporter {
        StatsdExporter {
            settings,
            increases: Increases::default(),
            socket: None,
        }
    }

    /// One push: the lines since the last one, sent in as few datagrams as fit.
    pub(super) fn push(
        &mut self,
        registry: &Registry,
        extras: &ScrapeExtras,
    ) -> Result<(), StatsdError> {
        let lines = self.lines(registry, extras);
        if lines.is_empty() {
            return Ok(());
        }
        let result = self.send(&lines);
        if result.is_err() {
            // Connect again next time: the agent may have restarted or the socket moved.
            self.socket = None;
        }
        result.map_err(|source| StatsdError::Send {
            section: self.settings.flavor.section(),
            destination: self.settings.destination.clone(),
            source,
        })
    }

    /// Every line of this push, in a stable order.
    pub(super) fn lines(&mut self, registry: &Registry, extras: &ScrapeExtras) -> Vec<String> {
        self.increases.begin();
        let mut batch = Batch {
            settings: &self.settings,
            increases: &mut self.increases,
            lines: Vec::new(),
            untagged: Vec::new(),
        };
        walk(registry, extras, &self.settings.families, &mut batch);
        batch.finish()
    }

    fn send(&mut self, lines: &[String]) -> std::io::Result<()> {
        if self.socket.is_none() {
            self.socket = Some(connect(&self.settings.destination)?);
        }
        let Some(socket) = &mut self.socket else {
            return Ok(());
        };
        let limit = match socket {
            Socket::Udp(_) => UDP_PAYLOAD,
            Socket::UnixDatagram(_) => UNIX_PAYLOAD,
            Socket::UnixStream(_) => usize::MAX,
        };
        for payload in packets(lines, limit) {
            match socket {
                Socket::Udp(s) => s.send(payload.as_bytes()).map(drop)?,
                Socket::UnixDatagram(s) => s.send(payload.as_bytes()).map(drop)?,
                Socket::UnixStream(s) => {
                    s.write_all(payload.as_bytes())?;
                    s.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    }
}

fn connect(destination: &Destination) -> std::io::Result<Socket> {
    match destination {
        Destination::Udp(address) => {
            let socket = UdpSocket::bind(if address.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            })?;
            socket.connect(address.as_str())?;
            Ok(Socket::Udp(socket))
        }
        Destination::UnixDatagram(path) => {
            let socket = UnixDatagram::unbound()?;
            socket.connect(path)?;
            Ok(Socket::UnixDatagram(socket))
        }
        Destination::UnixStream(path) => Ok(Socket::UnixStream(UnixStream::connect(path)?)),
    }
}

/// Lines joined by newlines into payloads of at most `limit` bytes (a longer line goes alone).
fn packets(lines: &[String], limit: usize) -> Vec<String> {
    let mut packets = Vec::new();
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.len() + 1 + line.len() > limit {
            packets.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        packets.push(current);
    }
    packets
}

/// The lines of one push. For StatsD, counters and gauges of one name are merged (it has no
/// tags to tell them apart).
struct Batch<'a> {
    settings: &'a StatsdSettings,
    increases: &'a mut Increases,
    lines: Vec<String>,
    untagged: Vec<(String, Value)>,
}

enum Value {
    Count(u64),
    /// Summed across series: connections open, servers up.
    Total(f64),
    /// The smallest across series: the first certificate to expire.
    Earliest(f64),
}

impl Sink for Batch<'_> {
    fn counter(&mut self, metric: Metric, tags: &Tags<'_>, total: u64) {
        let increase = self.increases.advance(series_key(metric, tags), total);
        if increase == 0 {
            return;
        }
        match self.settings.flavor {
            Flavor::Statsd => self
                .untagged
                .push((metric.dotted_name(), Value::Count(increase))),
            Flavor::Datadog => {
                let line = format!(
                    "{}.{}:{increase}|c{}",
                    self.settings.prefix,
                    metric.dotted_name(),
                    self.tags(tags)
                );
                self.lines.push(line);
            }
        }
    }

    fn gauge(&mut self, metric: Metric, tags: &Tags<'_>, value: f64) {
        match self.settings.flavor {
            Flavor::Statsd => {
                let value = match metric {
                    Metric::CertificateNotAfter => Value::Earliest(value),
                    _ => Value::Total(value),
                };
                self.untagged.push((metric.dotted_name(), value));
            }
            Flavor::Datadog => {
                let line = format!(
                    "{}.{}:{}|g{}",
                    self.settings.prefix,
                    metric.dotted_name(),
                    number(value),
                    self.tags(tags)
                );
                self.lines.push(line);
            }
        }
    }

    /// One timing per bucket that received requests since the last push.
    fn durations(
        &mut self,
        metric: Metric,
        tags: &Tags<'_>,
        bounds: &[f64],
        buckets: &[AtomicU64],
    ) {
        let new = self
            .increases
            .advance_buckets(&series_key(metric, tags), buckets);
        let tag_text = self.tags(tags);
        let prefix = &self.settings.prefix;
        let name = metric.dotted_name();
        for (index, count) in new.into_iter().enumerate() {
            if count == 0 {
                continue;
            }
            // The overflow bucket has no upper bound: the last finite one stands for it.
            let seconds = bounds
                .get(index)
                .or_else(|| bounds.last())
                .copied()
                .unwrap_or(0.0);
            let rate = sample_rate(count);
            let line = match self.settings.flavor {
                Flavor::Statsd => format!("{prefix}.{name}:{}|ms{rate}", number(seconds * 1000.0)),
                Flavor::Datadog => format!("{prefix}.{name}:{}|h{rate}{tag_text}", number(seconds)),
            };
            self.lines.push(line);
        }
    }
}

impl Batch<'_> {
    /// `|#k:v,…` for Datadog, nothing for StatsD.
    fn tags(&self, tags: &Tags<'_>) -> String {
        if self.settings.flavor == Flavor::Statsd || tags.is_empty() {
            return String::new();
        }
        let mut text = String::from("|#");
        for (i, (key, value)) in tags.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            // DogStatsD separators cannot appear inside a tag.
            let value: String = value
                .chars()
                .map(|c| {
                    if matches!(c, '|' | ',' | '#' | '\n') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            let _ = write!(text, "{key}:{value}");
        }
        text
    }

    fn finish(mut self) -> Vec<String> {
        // StatsD: one line per name.
        let mut merged: Vec<(String, Value)> = Vec::new();
        for (name, value) in std::mem::take(&mut self.untagged) {
            match (merged.iter_mut().find(|(n, _)| *n == name), value) {
                (Some((_, Value::Count(sum))), Value::Count(more)) => *sum += more,
                (Some((_, Value::Total(sum))), Value::Total(more)) => *sum += more,
                (Some((_, Value::Earliest(min))), Value::Earliest(more)) => *min = min.min(more),
                (_, value) => merged.push((name, value)),
            }
        }
        let prefix = &self.settings.prefix;
        let mut lines: Vec<String> = merged
            .into_iter()
            .map(|(name, value)| match value {
                Value::Count(n) => format!("{prefix}.{name}:{n}|c"),
                Value::Total(v) | Value::Earliest(v) => format!("{prefix}.{name}:{}|g", number(v)),
            })
            .collect();
        lines.append(&mut self.lines);
        lines
    }
}

/// `|@rate` telling the server that one line stands for `count` observations.
fn sample_rate(count: u64) -> String {
    if count <= 1 {
        String::new()
    } else {
        format!("|@{}", number(1.0 / count as f64))
    }
}

/// A number without trailing zeros (`1`, `0.25`, `1711111111`).
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.9}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CertificateExpiry, ServerUp};
    use crate::metrics::{
        MethodLabel, MetricsSettings, Observation, ProtocolLabel, SeriesKey, SeriesTable,
    };

    fn exporter(flavor: Flavor, options: serde_json::Value) -> (Registry, StatsdExporter) {
        let settings = StatsdSettings::from_static(flavor, &options).unwrap();
        let mut metrics = MetricsSettings::prometheus(&FINE_BOUNDS, true, true, true);
        metrics.prometheus = None;
        metrics.statsd = vec![settings.clone()];
        (Registry::new(metrics), StatsdExporter::new(settings))
    }

    fn request(table: &SeriesTable, code: u16, millis: u64) {
        table.record(&Observation {
            key: SeriesKey {
                method: MethodLabel::Get,
                code,
                protocol: ProtocolLabel::Http,
            },
            duration: Duration::from_millis(millis),
            request_bytes: 10,
            response_bytes: 100,
        });
    }

    fn extras() -> ScrapeExtras {
        ScrapeExtras {
            servers: vec![
                ServerUp {
                    service: "api@file".into(),
                    url: "http://10.0.0.1:80".into(),
                    up: true,
                },
                ServerUp {
                    service: "api@file".into(),
                    url: "http://10.0.0.2:80".into(),
                    up: false,
                },
            ],
            certificates: vec![
                CertificateExpiry {
                    common_name: "a.test".into(),
                    serial: "1".into(),
                    sans: "a.test".into(),
                    not_after_unix: 2_000_000_000,
                },
                CertificateExpiry {
                    common_name: "b.test".into(),
                    serial: "2".into(),
                    sans: "b.test".into(),
                    not_after_unix: 1_900_000_000,
                },
            ],
        }
    }

    #[test]
    fn options_and_defaults() {
        let statsd = StatsdSettings::from_static(Flavor::Statsd, &serde_json::Value::Null).unwrap();
        assert_eq!(
            statsd.destination,
            Destination::Udp("localhost:8125".into())
        );
        assert_eq!(statsd.prefix, "traefik");
        assert_eq!(statsd.push_interval, Duration::from_secs(10));
        assert!(
            statsd.families.entry_points && statsd.families.services && !statsd.families.routers
        );

        let datadog = StatsdSettings::from_static(
            Flavor::Datadog,
            &serde_json::json!({"address": "unix:///var/run/dd.sock", "prefix": "edge", "pushInterval": "1s"}),
        )
        .unwrap();
        assert_eq!(
            datadog.destination,
            Destination::UnixDatagram("/var/run/dd.sock".into())
        );
        assert_eq!(datadog.prefix, "edge");
        assert_eq!(datadog.push_interval, Duration::from_secs(1));
        assert_eq!(
            datadog_destination(Some("unixstream:///s".into())),
            Destination::UnixStream("/s".into())
        );
        assert_eq!(
            datadog_destination(Some("127.0.0.1:9125".into())),
            Destination::Udp("127.0.0.1:9125".into())
        );
        let err =
            StatsdSettings::from_static(Flavor::Statsd, &serde_json::json!({"pushInterval": []}))
                .unwrap_err();
        assert!(err.to_string().starts_with("metrics.statsD: "), "{err}");
    }

    #[test]
    fn datadog_sends_tagged_increases_gauges_and_bucketed_durations() {
        let (registry, mut exporter) = exporter(Flavor::Datadog, serde_json::json!({}));
        registry.config_reloaded();
        let web = registry.entry_point("web").unwrap();
        for millis in [3, 4, 4, 200] {
            request(&web, 200, millis);
        }
        let _open = registry.connections("web").open();
        let lines = exporter.lines(&registry, &extras());
        let tags = "|#code:200,entrypoint:web,method:GET,protocol:http";
        for expected in [
            "traefik.config.reload.total:1|c".to_string(),
            "traefik.open.connections:1|g|#entrypoint:web,protocol:TCP".to_string(),
            "traefik.tls.certs.notAfterTimestamp:1900000000|g|#cn:b.test,sans:b.test,serial:2"
                .to_string(),
            format!("traefik.entrypoint.request.total:4|c{tags}"),
            format!("traefik.entrypoint.requests.bytes.total:40|c{tags}"),
            format!("traefik.entrypoint.responses.bytes.total:400|c{tags}"),
            // 3 and 4 ms fall in (2.5 ms, 5 ms], 200 ms in (100 ms, 250 ms].
            format!("traefik.entrypoint.request.duration:0.005|h|@0.333333333{tags}"),
            format!("traefik.entrypoint.request.duration:0.25|h{tags}"),
            "traefik.service.server.up:0|g|#service:api@file,url:http://10.0.0.2:80".to_string(),
        ] {
            assert!(lines.contains(&expected), "{expected} not in {lines:#?}");
        }

        // The next push carries only what changed: one more request, no reload.
        request(&web, 200, 4);
        let lines = exporter.lines(&registry, &ScrapeExtras::default());
        assert!(
            lines.contains(&format!("traefik.entrypoint.request.total:1|c{tags}")),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&format!(
                "traefik.entrypoint.request.duration:0.005|h{tags}"
            )),
            "{lines:#?}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("traefik.config.reload.total")),
            "{lines:#?}"
        );
        assert!(!lines.iter().any(|l| l.contains("0.25|h")), "{lines:#?}");
    }

    #[test]
    fn statsd_merges_series_without_tags_and_times_in_milliseconds() {
        let (registry, mut exporter) = exporter(
            Flavor::Statsd,
            serde_json::json!({"addRoutersLabels": true}),
        );
        let web = registry.entry_point("web").unwrap();
        let admin = registry.entry_point("admin").unwrap();
        request(&web, 200, 4);
        request(&web, 404, 4);
        request(&admin, 200, 700);
        let router = registry.router("r@file", "api@file").unwrap();
        request(&router, 200, 4);
        let lines = exporter.lines(&registry, &extras());
        for expected in [
            "traefik.entrypoint.request.total:3|c",
            "traefik.router.request.total:1|c",
            "traefik.service.server.up:1|g",
            "traefik.tls.certs.notAfterTimestamp:1900000000|g",
            "traefik.entrypoint.request.duration:5|ms",
            "traefik.entrypoint.request.duration:1000|ms",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} not in {lines:#?}"
            );
        }
        assert!(
            lines.iter().all(|l| !l.contains("|#")),
            "no tags: {lines:#?}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("traefik.entrypoint.request.total"))
                .count(),
            1
        );
    }

    #[test]
    fn lines_are_packed_into_datagrams() {
        let lines: Vec<String> = (0..10).map(|i| format!("m{i}:1|c")).collect();
        let packed = packets(&lines, 20);
        assert!(packed.iter().all(|p| p.len() <= 20), "{packed:?}");
        assert_eq!(packed.join("\n"), lines.join("\n"));
        assert_eq!(
            packets(&["x".repeat(50)], 20).len(),
            1,
            "a long line goes alone"
        );
    }

    #[test]
    fn numbers_and_rates() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1_711_111_111.0), "1711111111");
        assert_eq!(sample_rate(1), "");
        assert_eq!(sample_rate(4), "|@0.25");
    }
}
