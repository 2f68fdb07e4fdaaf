//! Observability, continued: `traefik_tls_certs_not_after` for the served certificates,
//! retries (`traefik_service_retries_total`, the access log's `RetryAttempts` and its
//! `retryAttempts` filter), the authenticated user in the access log (`ClientUsername`), and
//! OTLP metrics pushed to a collector.
//!
//! Runs against Traefik too (`VIADUCT_E2E_PROXY=traefik`), except where noted.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
#[allow(dead_code)] // shared with observe.rs, which uses all of it
#[path = "observe/exposition.rs"]
mod exposition;
#[path = "observe/otlp.rs"]
mod otlp;

use std::path::Path;
use std::time::Duration;

use common::{api_route, echo_service, get, start_with, static_config_with_traefik, wait_backend};
use exposition::{scrape, Exposition};
use viaduct_testkit::{wait_until, EchoBackend, HttpClient, RequestSpec};

/// The JSON lines of an access-log file, once `count` of them are for `last_path` (requests
/// are sent one after the other, so the earlier ones are written by then).
async fn json_lines(path: &Path, last_path: &str, count: usize) -> Vec<serde_json::Value> {
    wait_until(
        &format!("{count} lines for {last_path} in {}", path.display()),
        Duration::from_secs(5),
        || async move {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            // Whole lines only: the writer may be in the middle of the last one.
            let lines: Vec<serde_json::Value> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines
                .iter()
                .filter(|l| l["RequestPath"] == last_path)
                .count()
                >= count
            {
                Ok(Some(lines))
            } else {
                Err(format!("{} lines", lines.len()))
            }
        },
    )
    .await
    .unwrap()
}

/// The line whose `RequestPath` is `path` (the last, if several).
fn line_of<'a>(lines: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .rev()
        .find(|l| l["RequestPath"] == path)
        .unwrap_or_else(|| panic!("no line for {path} in {lines:#?}"))
}

/// Writes a self-signed certificate and its key as PEM files; returns their paths.
fn certificate(
    dir: &Path,
    stem: &str,
    common_name: &str,
    sans: &[&str],
    serial: u64,
) -> (String, String) {
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.serial_number = Some(rcgen::SerialNumber::from(serial));
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2031, 3, 4);
    let cert = params.self_signed(&key_pair).unwrap();
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key_pair.serialize_pem()).unwrap();
    (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_certificates_expiry_with_traefik_labels() {
    let dir = tempfile::tempdir().unwrap();
    let served = certificate(
        dir.path(),
        "served",
        "example.test",
        &["www.example.test", "example.test", "127.0.0.1"],
        0x0123_4567_89ab_cdef,
    );
    let default = certificate(dir.path(), "default", "default.test", &[], 77);
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik("metrics:\n  prometheus: {}\n");
    let dynamic = r#"
http:
  routers:
    api:
      rule: "Host(`api.test`)"
      entryPoints: [web]
      service: echo
    secure:
      rule: "Host(`example.test`)"
      entryPoints: [web]
      service: echo
      tls: {}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
tls:
  certificates:
    - certFile: "{{cert}}"
      keyFile: "{{key}}"
  stores:
    default:
      defaultCertificate:
        certFile: "{{default_cert}}"
        keyFile: "{{default_key}}"
"#;
    let proxy = start_with(
        &yaml,
        dynamic,
        &[
            ("echo", echo.url()),
            ("cert", served.0),
            ("key", served.1),
            ("default_cert", default.0),
            ("default_key", default.1),
        ],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/", "echo").await;
    let exposition = scrape(&proxy, &client).await;
    let mut certs: Vec<(String, String, String, f64)> = exposition
        .samples
        .iter()
        .filter(|(name, _, _)| name == "traefik_tls_certs_not_after")
        .map(|(_, l, v)| (l["cn"].clone(), l["sans"].clone(), l["serial"].clone(), *v))
        .collect();
    certs.sort_by(|a, b| a.0.cmp(&b.0));
    // 2031-03-04T00:00:00Z. The DNS names sorted, IP addresses left out, the serial in
    // decimal; the generated default certificate is not listed.
    let not_after = 1_930_348_800.0;
    assert_eq!(
        certs,
        vec![
            ("default.test".into(), "".into(), "77".into(), not_after),
            (
                "example.test".into(),
                "example.test,www.example.test".into(),
                0x0123_4567_89ab_cdef_u64.to_string(),
                not_after
            ),
        ]
    );
    assert_eq!(exposition.types["traefik_tls_certs_not_after"], "gauge");
    for labels in exposition.label_names("traefik_tls_certs_not_after") {
        assert_eq!(labels, ["cn", "sans", "serial"]);
    }
}

/// A port nothing listens on: connections to it are refused.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_counted_and_logged() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(
        r#"metrics:
  prometheus: {}
accessLog:
  filePath: "{{dir}}/access.json"
  format: json
  filters:
    retryAttempts: true
"#,
    );
    let dynamic = r#"
http:
  routers:
    api:
      rule: "Host(`api.test`)"
      entryPoints: [web]
      service: echo
    flaky:
      rule: "Host(`flaky.test`)"
      entryPoints: [web]
      middlewares: [thrice]
      service: dead
  middlewares:
    thrice:
      retry:
        attempts: 3
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
    dead:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{{dead}}"
"#;
    let proxy = start_with(
        &yaml,
        dynamic,
        &[("echo", echo.url()), ("dead", closed_port().to_string())],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/not-retried", "echo").await;
    let spec =
        RequestSpec::get(&format!("{}/retried", proxy.url("web"))).header("host", "flaky.test");
    common::wait_reply(&proxy, &client, spec, |r| r.status == 502).await;
    let before = scrape(&proxy, &client).await;
    for path in ["/one", "/two"] {
        assert_eq!(get(&proxy, &client, "flaky.test", path).await.status, 502);
    }
    let after = scrape(&proxy, &client).await;
    if proxy.kind().is_traefik() {
        // Traefik 3.7 wires no listener to its retry middleware: it counts and logs no
        // retries (so `retryAttempts: true` keeps no line).
        return;
    }
    let retries = |e: &Exposition| {
        e.value_or_zero("traefik_service_retries_total", &[("service", "dead@file")])
    };
    assert_eq!(
        retries(&after) - retries(&before),
        4.0,
        "2 retries per request"
    );
    assert_eq!(after.types["traefik_service_retries_total"], "counter");
    for labels in after.label_names("traefik_service_retries_total") {
        assert_eq!(labels, ["service"]);
    }
    assert!(
        after
            .value("traefik_service_retries_total", &[("service", "echo@file")])
            .is_none(),
        "a service without retries has no series"
    );

    let lines = json_lines(&proxy.dir().join("access.json"), "/two", 1).await;
    for path in ["/retried", "/one", "/two"] {
        let line = line_of(&lines, path);
        assert_eq!(line["RetryAttempts"], 2, "{line}");
        assert_eq!(line["DownstreamStatus"], 502, "{line}");
    }
    assert!(
        lines.iter().all(|l| l["RequestPath"] != "/not-retried"),
        "retryAttempts: true keeps only lines with retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl"]
async fn the_authenticated_user_is_logged() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(
        "accessLog:\n  filePath: \"{{dir}}/access.json\"\n  format: json\n",
    );
    // test:test for both (an apr1 hash, and the digest HA1 in realm `traefik`).
    let dynamic = concat!(
        r#"
http:
  routers:
    basic:
      rule: "Host(`basic.test`)"
      entryPoints: [web]
      middlewares: [basic]
      service: echo
    digest:
      rule: "Host(`digest.test`)"
      entryPoints: [web]
      middlewares: [digest]
      service: echo
    open:
      rule: "Host(`open.test`)"
      entryPoints: [web]
      service: echo
  middlewares:
    basic:
      basicAuth:
        users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
    digest:
      digestAuth:
        users: ["test:traefik:a2688e031edb4be6a3797f3882655c05"]
"#,
        echo_service!()
    );
    let proxy = start_with(&yaml, dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "open.test", "/open", "echo").await;
    let curl = |args: &[&str], host: &str, path: &str| {
        let output = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(args)
            .args(["-H", &format!("Host: {host}")])
            .arg(format!("{}{path}", proxy.url("web")))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(curl(&["-u", "test:test"], "basic.test", "/basic-ok"), "200");
    assert_eq!(curl(&["-u", "we ird:x"], "basic.test", "/basic-bad"), "401");
    assert_eq!(curl(&[], "basic.test", "/basic-none"), "401");
    assert_eq!(
        curl(
            &["--digest", "-u", "test:test"],
            "digest.test",
            "/digest-ok"
        ),
        "200"
    );
    assert_eq!(
        curl(
            &["--digest", "-u", "test:bad"],
            "digest.test",
            "/digest-bad"
        ),
        "401"
    );

    let lines = json_lines(&proxy.dir().join("access.json"), "/digest-bad", 2).await;
    let user = |path: &str| line_of(&lines, path)["ClientUsername"].clone();
    assert_eq!(user("/open"), "-");
    assert_eq!(user("/basic-ok"), "test");
    assert_eq!(user("/basic-bad"), "we ird", "logged even when refused");
    assert_eq!(user("/basic-none"), "", "basicAuth logs an empty name");
    assert_eq!(user("/digest-ok"), "test");
    assert_eq!(user("/digest-bad"), "test", "logged even when refused");
    let challenges: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["RequestPath"] == "/digest-ok")
        .collect();
    assert_eq!(challenges.len(), 2, "curl asks for the challenge first");
    assert_eq!(challenges[0]["ClientUsername"], "-");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_metrics_are_pushed_with_traefik_names() {
    let collector = otlp::Collector::start().await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(&format!(
        r#"metrics:
  otlp:
    addRoutersLabels: true
    pushInterval: 200ms
    serviceName: viaduct-test
    explicitBoundaries: [0.5, 2]
    resourceAttributes:
      deployment.environment: test
    http:
      endpoint: "http://127.0.0.1:{}/v1/metrics"
      headers:
        x-api-key: secret
"#,
        collector.port
    ));
    let proxy = start_with(&yaml, &api_route(), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    // One 200 here (earlier tries, if any, are 404s), five more below.
    wait_backend(&proxy, &client, "api.test", "/warm", "echo").await;
    for _ in 0..5 {
        assert_eq!(get(&proxy, &client, "api.test", "/x").await.status, 200);
    }
    let ok_get = [("code", "200"), ("method", "GET"), ("protocol", "http")];
    let find = |points: &[otlp::MetricPoint], name: &str, labels: &[(&str, &str)]| {
        points
            .iter()
            .find(|p| {
                p.name == name
                    && labels
                        .iter()
                        .chain(ok_get.iter())
                        .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
            })
            .cloned()
    };
    let points = wait_until("six requests pushed", Duration::from_secs(10), || {
        let points = collector.last_metrics();
        async move {
            let counted = find(
                &points,
                "traefik_entrypoint_requests_total",
                &[("entrypoint", "web")],
            )
            .map(|p| p.value);
            if counted == Some(6.0) {
                Ok(Some(points))
            } else {
                let names: std::collections::BTreeSet<&str> =
                    points.iter().map(|p| p.name.as_str()).collect();
                Err(format!("counted {counted:?}; pushed {names:?}"))
            }
        }
    })
    .await
    .unwrap();

    let router = find(
        &points,
        "traefik_router_requests_total",
        &[("router", "api@file"), ("service", "echo@file")],
    )
    .unwrap();
    assert_eq!((router.kind, router.value), ("sum", 6.0));
    let service = find(
        &points,
        "traefik_service_requests_total",
        &[("service", "echo@file")],
    )
    .unwrap();
    assert_eq!(service.value, 6.0);
    let duration = find(
        &points,
        "traefik_entrypoint_request_duration_seconds",
        &[("entrypoint", "web")],
    )
    .unwrap();
    assert_eq!(duration.kind, "histogram");
    assert_eq!(duration.value, 6.0);
    assert_eq!(duration.bounds, [0.5, 2.0]);
    assert_eq!(duration.bucket_counts.iter().sum::<u64>(), 6);
    assert_eq!(
        duration.attributes.keys().collect::<Vec<_>>(),
        ["code", "entrypoint", "method", "protocol"]
    );
    assert!(find(
        &points,
        "traefik_entrypoint_responses_bytes_total",
        &[("entrypoint", "web")]
    )
    .is_some_and(|p| p.value > 0.0));
    assert!(points
        .iter()
        .any(|p| p.name == "traefik_config_reloads_total" && p.value >= 1.0));
    assert_eq!(duration.resource["service.name"], "viaduct-test");
    assert_eq!(duration.resource["deployment.environment"], "test");

    // Without `metrics.prometheus`, there is no `/metrics`.
    let scrape = client
        .get(&format!("{}/metrics", proxy.url("traefik")))
        .await
        .unwrap();
    assert_eq!(scrape.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_exports_reach_an_https_collector() {
    let (collector, ca_pem) = otlp::Collector::start_tls().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("collector-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(&format!(
        r#"metrics:
  otlp:
    pushInterval: 200ms
    http:
      endpoint: "https://127.0.0.1:{port}/v1/metrics"
      tls:
        ca: "{ca}"
tracing:
  otlp:
    http:
      endpoint: "https://127.0.0.1:{port}/v1/traces"
      tls:
        ca: "{ca}"
"#,
        port = collector.port,
        ca = ca.display()
    ));
    let proxy = start_with(&yaml, &api_route(), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let reply = wait_backend(&proxy, &client, "api.test", "/over-tls", "echo").await;
    let traceparent = reply
        .echo()
        .unwrap()
        .header("traceparent")
        .unwrap()
        .to_string();
    let trace = traceparent.split('-').nth(1).unwrap().to_string();
    wait_until(
        "metrics and spans over TLS",
        Duration::from_secs(10),
        || {
            let pushed = collector
                .last_metrics()
                .iter()
                .any(|p| p.name == "traefik_entrypoint_requests_total");
            let spans = collector.spans_of(&trace).len();
            async move {
                if pushed && spans > 0 {
                    Ok(Some(()))
                } else {
                    Err(format!("metrics pushed: {pushed}; spans: {spans}"))
                }
            }
        },
    )
    .await
    .unwrap();
}
