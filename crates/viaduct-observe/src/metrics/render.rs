//! The Prometheus text exposition, in Traefik's metric order and label order (alphabetical,
//! `le` last), with Traefik's help texts.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{lock, Registry, ScrapeExtras, Series, SeriesKey, SeriesTable};

/// The fixed labels of one family, already sorted with the per-request ones in mind.
struct Family {
    labels: Vec<(&'static str, String)>,
    table: Arc<SeriesTable>,
}

/// A counter family: name suffix, help text, and the value it reads from a series.
type Counter = (&'static str, &'static str, fn(&Series) -> u64);

struct Kind {
    prefix: &'static str,
    /// Help texts: requests, duration, request bytes, response bytes.
    help: [&'static str; 4],
    tls_help: &'static str,
}

const ENTRY_POINT: Kind = Kind {
    prefix: "traefik_entrypoint",
    help: [
        "How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method.",
        "How long it took to process the request on an entrypoint, partitioned by status code, protocol, and method.",
        "The total size of requests in bytes handled by an entrypoint, partitioned by status code, protocol, and method.",
        "The total size of responses in bytes handled by an entrypoint, partitioned by status code, protocol, and method.",
    ],
    tls_help: "How many HTTP requests with TLS processed on an entrypoint, partitioned by TLS Version and TLS cipher Used.",
};

const ROUTER: Kind = Kind {
    prefix: "traefik_router",
    help: [
        "How many HTTP requests are processed on a router, partitioned by service, status code, protocol, and method.",
        "How long it took to process the request on a router, partitioned by service, status code, protocol, and method.",
        "The total size of requests in bytes handled by a router, partitioned by service, status code, protocol, and method.",
        "The total size of responses in bytes handled by a router, partitioned by service, status code, protocol, and method.",
    ],
    tls_help: "How many HTTP requests with TLS are processed on a router, partitioned by service, TLS Version, and TLS cipher Used.",
};

const SERVICE: Kind = Kind {
    prefix: "traefik_service",
    help: [
        "How many HTTP requests processed on a service, partitioned by status code, protocol, and method.",
        "How long it took to process the request on a service, partitioned by status code, protocol, and method.",
        "The total size of requests in bytes received by a service, partitioned by status code, protocol, and method.",
        "The total size of responses in bytes returned by a service, partitioned by status code, protocol, and method.",
    ],
    tls_help: "How many HTTP requests with TLS processed on a service, partitioned by TLS version and TLS cipher.",
};

pub(super) fn render(registry: &Registry, extras: &ScrapeExtras) -> String {
    let mut out = String::with_capacity(4096);
    let Some(prometheus) = registry.settings.prometheus.as_ref() else {
        return out;
    };
    let buckets = &prometheus.buckets;
    let last = f64::from_bits(registry.last_reload_success.load(Ordering::Relaxed));
    header(
        &mut out,
        "traefik_config_last_reload_success",
        "Last config reload success",
        "gauge",
    );
    let _ = writeln!(out, "traefik_config_last_reload_success {}", number(last));
    header(
        &mut out,
        "traefik_config_reloads_total",
        "Config reloads",
        "counter",
    );
    let _ = writeln!(
        out,
        "traefik_config_reloads_total {}",
        registry.reloads.load(Ordering::Relaxed)
    );

    let entry_points: Vec<Family> = lock(&registry.entry_points)
        .iter()
        .filter(|_| prometheus.entry_points)
        .map(|(name, table)| Family {
            labels: vec![("entrypoint", name.clone())],
            table: table.clone(),
        })
        .collect();
    families(&mut out, &ENTRY_POINT, &entry_points, buckets);

    let connections = lock(&registry.open_connections);
    if !connections.is_empty() {
        header(
            &mut out,
            "traefik_open_connections",
            "How many open connections exist, by entryPoint and protocol",
            "gauge",
        );
        for (entry_point, gauge) in connections.iter() {
            let _ = writeln!(
                out,
                "traefik_open_connections{{entrypoint=\"{}\",protocol=\"TCP\"}} {}",
                escape(entry_point),
                gauge.get()
            );
        }
    }
    drop(connections);

    let routers: Vec<Family> = live(&mut lock(&registry.routers))
        .into_iter()
        .filter(|_| prometheus.routers)
        .map(|((router, service), table)| Family {
            labels: vec![("router", router), ("service", service)],
            table,
        })
        .collect();
    families(&mut out, &ROUTER, &routers, buckets);
    let services: Vec<Family> = live(&mut lock(&registry.services))
        .into_iter()
        .filter(|_| prometheus.services)
        .map(|(service, table)| Family {
            labels: vec![("service", service)],
            table,
        })
        .collect();
    families(&mut out, &SERVICE, &services, buckets);
    // Like any Prometheus counter vector, a service appears once it has retried.
    let retried: Vec<(&str, u64)> = services
        .iter()
        .filter_map(|family| {
            let retries = family.table.retries();
            let service = family.labels.first().map(|(_, name)| name.as_str())?;
            (retries > 0).then_some((service, retries))
        })
        .collect();
    if !retried.is_empty() {
        header(
            &mut out,
            "traefik_service_retries_total",
            "How many request retries happened on a service.",
            "counter",
        );
        for (service, retries) in retried {
            let _ = writeln!(
                out,
                "traefik_service_retries_total{{service=\"{}\"}} {retries}",
                escape(service)
            );
        }
    }

    if !extras.servers.is_empty() {
        header(
            &mut out,
            "traefik_service_server_up",
            "service server is up, described by gauge value of 0 or 1.",
            "gauge",
        );
        for server in &extras.servers {
            let _ = writeln!(
                out,
                "traefik_service_server_up{{service=\"{}\",url=\"{}\"}} {}",
                escape(&server.service),
                escape(&server.url),
                u8::from(server.up)
            );
        }
    }
    if !extras.certificates.is_empty() {
        header(
            &mut out,
            "traefik_tls_certs_not_after",
            "Certificate expiration timestamp",
            "gauge",
        );
        // Prometheus orders samples by label values: cn, sans, serial.
        let mut certificates: Vec<_> = extras.certificates.iter().collect();
        certificates.sort_by(|a, b| {
            (&a.common_name, &a.sans, &a.serial).cmp(&(&b.common_name, &b.sans, &b.serial))
        });
        for cert in certificates {
            let _ = writeln!(
                out,
                "traefik_tls_certs_not_after{{cn=\"{}\",sans=\"{}\",serial=\"{}\"}} {}",
                escape(&cert.common_name),
                escape(&cert.sans),
                escape(&cert.serial),
                number(cert.not_after_unix as f64)
            );
        }
    }
    out
}

/// Live tables, dropping the entries of routers and services no snapshot uses any more.
fn live<K: Ord + Clone>(
    all: &mut std::collections::BTreeMap<K, Weak<SeriesTable>>,
) -> Vec<(K, Arc<SeriesTable>)> {
    all.retain(|_, weak| weak.strong_count() > 0);
    all.iter()
        .filter_map(|(k, weak)| weak.upgrade().map(|t| (k.clone(), t)))
        .collect()
}

/// `buckets`: the bounds Prometheus shows, a subset of the tables' bounds.
fn families(out: &mut String, kind: &Kind, families: &[Family], buckets: &[f64]) {
    let rows: Vec<(String, Arc<Series>, &[f64])> = families
        .iter()
        .flat_map(|family| {
            family
                .table
                .snapshot()
                .into_iter()
                .map(move |(key, series)| {
                    (
                        labels(key, &family.labels, &[]),
                        series,
                        family.table.bounds(),
                    )
                })
        })
        .collect();
    let with_headers = families.iter().any(|f| !f.table.header_labels().is_empty());
    if rows.is_empty() {
        return;
    }
    let p = kind.prefix;
    let name = format!("{p}_request_duration_seconds");
    header(out, &name, kind.help[1], "histogram");
    for (labels, series, bounds) in &rows {
        let mut cumulative = 0;
        for (le, bucket) in bounds.iter().zip(series.buckets.iter()) {
            cumulative += bucket.load(Ordering::Relaxed);
            if !buckets.contains(le) {
                continue;
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                number(*le)
            );
        }
        let count = series.requests.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = series.duration_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", number(sum));
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
    let counters: [Counter; 3] = [
        ("requests_bytes_total", kind.help[2], |s| {
            s.request_bytes.load(Ordering::Relaxed)
        }),
        ("requests_total", kind.help[0], |s| {
            s.requests.load(Ordering::Relaxed)
        }),
        ("responses_bytes_total", kind.help[3], |s| {
            s.response_bytes.load(Ordering::Relaxed)
        }),
    ];
    for (suffix, help, value) in counters {
        let name = format!("{p}_{suffix}");
        if suffix == "requests_total" {
            // `requests_tls_total` sorts between `requests_bytes_total` and `requests_total`.
            requests_over_tls(
                out,
                &format!("{p}_requests_tls_total"),
                kind.tls_help,
                families,
            );
        }
        header(out, &name, help, "counter");
        if suffix == "requests_total" && with_headers {
            requests_with_headers(out, &name, families);
            continue;
        }
        for (labels, series, _) in &rows {
            let _ = writeln!(out, "{name}{{{labels}}} {}", value(series));
        }
    }
}

/// `*_requests_tls_total`, when some requests came over TLS.
fn requests_over_tls(out: &mut String, name: &str, help: &str, families: &[Family]) {
    let rows: Vec<(String, u64)> = families
        .iter()
        .flat_map(|family| {
            family
                .table
                .tls_counts()
                .into_iter()
                .map(move |(tls, count)| {
                    let mut all: Vec<(&str, &str)> = family
                        .labels
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .collect();
                    all.push(("tls_cipher", tls.cipher));
                    all.push(("tls_version", tls.version));
                    all.sort_by_key(|(k, _)| *k);
                    let labels: Vec<String> = all
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                        .collect();
                    (labels.join(","), count)
                })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    header(out, name, help, "counter");
    for (labels, count) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {count}");
    }
}

/// `*_requests_total` with the `headerLabels` labels (every sample has them, as in Traefik).
fn requests_with_headers(out: &mut String, name: &str, families: &[Family]) {
    for family in families {
        let names = family.table.header_labels();
        for ((key, values), count) in family.table.labelled_counts() {
            let extra: Vec<(&str, &str)> = names
                .iter()
                .map(String::as_str)
                .zip(values.iter().map(String::as_str))
                .collect();
            let labels = labels(key, &family.labels, &extra);
            let _ = writeln!(out, "{name}{{{labels}}} {count}");
        }
    }
}

/// `code`, `method`, `protocol` and the family's own labels, alphabetically.
fn labels(key: SeriesKey, fixed: &[(&'static str, String)], extra: &[(&str, &str)]) -> String {
    let code = key.code.to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("code", code.as_str()),
        ("method", key.method.as_str()),
        ("protocol", key.protocol.as_str()),
    ];
    all.extend(fixed.iter().map(|(k, v)| (*k, v.as_str())));
    all.extend(extra.iter().copied());
    all.sort_by_key(|(k, _)| *k);
    let mut out = String::with_capacity(96);
    for (k, v) in all {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Numbers as Go's Prometheus client writes them (`5`, `0.1`, `1.795e+09` aside: any form
/// parses).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{MetricsSettings, Observation, ProtocolLabel};
    use super::*;
    use crate::metrics::MethodLabel;

    #[test]
    fn traefik_names_labels_and_order() {
        let registry = Registry::new(MetricsSettings::prometheus(
            &[0.1, 0.3, 1.2, 5.0],
            true,
            true,
            true,
        ));
        let web = registry.entry_point("web").unwrap();
        let router = registry.router("r1@file", "s1@file").unwrap();
        let observation = Observation {
            key: SeriesKey {
                method: MethodLabel::Get,
                code: 200,
                protocol: ProtocolLabel::Http,
            },
            duration: Duration::from_millis(5),
            request_bytes: 0,
            response_bytes: 449,
        };
        web.record(&observation);
        router.record(&observation);
        let text = registry.render(&ScrapeExtras::default());
        assert!(text.contains(
            "traefik_entrypoint_requests_total{code=\"200\",entrypoint=\"web\",method=\"GET\",protocol=\"http\"} 1\n"
        ));
        assert!(text.contains(
            "traefik_router_request_duration_seconds_bucket{code=\"200\",method=\"GET\",protocol=\"http\",router=\"r1@file\",service=\"s1@file\",le=\"0.1\"} 1\n"
        ));
        assert!(text.contains(
            "traefik_router_responses_bytes_total{code=\"200\",method=\"GET\",protocol=\"http\",router=\"r1@file\",service=\"s1@file\"} 449\n"
        ));
        drop(router);
        let text = registry.render(&ScrapeExtras::default());
        assert!(!text.contains("traefik_router_"), "{text}");
    }
}
