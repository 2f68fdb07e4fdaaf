//! Observability as a user sees it: `/metrics` scraped and parsed (exact counter deltas after
//! N requests, Traefik's names and labels), `/ping` and `viaduct healthcheck` (also while
//! shutting down), access-log lines in CLF and JSON (filters, header fields, reopening on
//! SIGUSR1), and the process log in a file as JSON.
//!
//! Runs against Traefik too (`VIADUCT_E2E_PROXY=traefik`), except where noted.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
#[path = "observe/exposition.rs"]
mod exposition;
#[path = "observe/otlp.rs"]
mod otlp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{api_route, get, kind, start_with, static_config_with_traefik, wait_backend};
use exposition::{scrape, Exposition};
use viaduct_testkit::{
    wait_until, EchoBackend, HttpClient, ProxyUnderTest, RequestBody, RequestSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_exact_deltas_with_traefik_names() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik("metrics:\n  prometheus:\n    addRoutersLabels: true\n");
    let proxy = start_with(&yaml, &api_route(), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/", "echo").await;
    let before = scrape(&proxy, &client).await;

    let mut response_bytes = 0;
    for _ in 0..7 {
        response_bytes += get(&proxy, &client, "api.test", "/x").await.body.len();
    }
    for _ in 0..3 {
        assert_eq!(get(&proxy, &client, "nobody.test", "/").await.status, 404);
    }
    for _ in 0..2 {
        let spec = RequestSpec::new(http::Method::POST, &format!("{}/p", proxy.url("web")))
            .header("host", "api.test")
            .body(RequestBody::Bytes("hello".into()));
        assert_eq!(client.send(spec).await.unwrap().status, 200);
    }
    let after = scrape(&proxy, &client).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value_or_zero(name, labels) - before.value_or_zero(name, labels)
    };
    let web_get = [
        ("entrypoint", "web"),
        ("code", "200"),
        ("method", "GET"),
        ("protocol", "http"),
    ];
    assert_eq!(delta("traefik_entrypoint_requests_total", &web_get), 7.0);
    assert_eq!(
        delta(
            "traefik_entrypoint_request_duration_seconds_count",
            &web_get
        ),
        7.0
    );
    assert_eq!(
        delta("traefik_entrypoint_responses_bytes_total", &web_get),
        response_bytes as f64
    );
    let not_found = [("entrypoint", "web"), ("code", "404"), ("method", "GET")];
    assert_eq!(delta("traefik_entrypoint_requests_total", &not_found), 3.0);
    let post = [("entrypoint", "web"), ("code", "200"), ("method", "POST")];
    assert_eq!(delta("traefik_entrypoint_requests_total", &post), 2.0);
    assert_eq!(
        delta("traefik_entrypoint_requests_bytes_total", &post),
        10.0
    );

    let router = [
        ("router", "api@file"),
        ("service", "echo@file"),
        ("code", "200"),
        ("method", "GET"),
    ];
    assert_eq!(delta("traefik_router_requests_total", &router), 7.0);
    let service = [("service", "echo@file"), ("code", "200"), ("method", "GET")];
    assert_eq!(delta("traefik_service_requests_total", &service), 7.0);
    assert_eq!(
        delta(
            "traefik_service_request_duration_seconds_bucket",
            &[
                ("service", "echo@file"),
                ("code", "200"),
                ("method", "GET"),
                ("le", "+Inf")
            ]
        ),
        7.0
    );

    // Traefik's label sets, exactly.
    let sorted = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for labels in after.label_names("traefik_entrypoint_requests_total") {
        assert_eq!(
            labels,
            sorted(&["code", "entrypoint", "method", "protocol"])
        );
    }
    for labels in after.label_names("traefik_router_requests_total") {
        assert_eq!(
            labels,
            sorted(&["code", "method", "protocol", "router", "service"])
        );
    }
    for labels in after.label_names("traefik_service_request_duration_seconds_bucket") {
        assert_eq!(
            labels,
            sorted(&["code", "le", "method", "protocol", "service"])
        );
    }
    for labels in after.label_names("traefik_open_connections") {
        assert_eq!(labels, sorted(&["entrypoint", "protocol"]));
    }
    let buckets: Vec<String> = after
        .samples
        .iter()
        .filter(|(n, l, _)| {
            n == "traefik_entrypoint_request_duration_seconds_bucket"
                && l.get("code").map(String::as_str) == Some("404")
        })
        .map(|(_, l, _)| l["le"].clone())
        .collect();
    assert_eq!(
        buckets,
        ["0.1", "0.3", "1.2", "5", "+Inf"],
        "Traefik's default buckets"
    );
    assert_eq!(after.types["traefik_config_reloads_total"], "counter");
    assert!(after.value("traefik_config_reloads_total", &[]).unwrap() >= 1.0);
    assert!(
        after
            .value("traefik_config_last_reload_success", &[])
            .unwrap()
            > 1.6e9
    );
    assert!(after
        .value(
            "traefik_open_connections",
            &[("entrypoint", "web"), ("protocol", "TCP")]
        )
        .is_some());
    // Requests to the internal routers (this very scrape) are not counted without addInternals.
    assert!(
        after
            .value(
                "traefik_entrypoint_requests_total",
                &[("entrypoint", "traefik")]
            )
            .is_none(),
        "internal requests counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_label_options_and_manual_routing() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(
        "metrics:\n  prometheus:\n    manualRouting: true\n    addEntryPointsLabels: false\n    buckets: [0.5, 2]\n    headerLabels:\n      tenant: X-Tenant\n",
    );
    let dynamic = api_route().replacen(
        "  services:\n",
        "    metrics:\n      rule: \"Path(`/custom-metrics`)\"\n      entryPoints: [traefik]\n      service: prometheus@internal\n  services:\n",
        1,
    );
    let proxy = start_with(&yaml, &dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/", "echo").await;
    for tenant in ["blue", "blue", "green"] {
        let spec = RequestSpec::get(&format!("{}/t", proxy.url("web")))
            .header("host", "api.test")
            .header("x-tenant", tenant);
        assert_eq!(client.send(spec).await.unwrap().status, 200);
    }
    let reply = client
        .get(&format!("{}/custom-metrics", proxy.url("traefik")))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let scraped = Exposition::parse(&reply.text()).unwrap();
    let by_tenant = |tenant: &str| {
        scraped.value_or_zero(
            "traefik_service_requests_total",
            &[
                ("service", "echo@file"),
                ("code", "200"),
                ("tenant", tenant),
            ],
        )
    };
    assert_eq!(
        (by_tenant("blue"), by_tenant("green")),
        (2.0, 1.0),
        "headerLabels"
    );
    for labels in scraped.label_names("traefik_service_requests_total") {
        assert!(labels.contains(&"tenant".to_string()), "{labels:?}");
    }
    assert!(
        !scraped
            .names()
            .iter()
            .any(|n| n.starts_with("traefik_entrypoint_")),
        "addEntryPointsLabels: false"
    );
    assert!(
        !scraped
            .names()
            .iter()
            .any(|n| n.starts_with("traefik_router_")),
        "addRoutersLabels defaults to false"
    );
    let les: Vec<String> = scraped
        .samples
        .iter()
        .filter(|(n, l, _)| {
            n == "traefik_service_request_duration_seconds_bucket" && l["method"] == "GET"
        })
        .map(|(_, l, _)| l["le"].clone())
        .collect();
    assert_eq!(les, ["0.5", "2", "+Inf"]);
    let default_path = client
        .get(&format!("{}/metrics", proxy.url("traefik")))
        .await
        .unwrap();
    assert_eq!(
        default_path.status, 404,
        "manualRouting: no /metrics router"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_then_reports_termination() {
    let yaml = static_config_with_traefik(
        "ping: {}\n",
    )
    .replace(
        "  traefik:\n    address: \"{{addr:traefik}}\"\n",
        // The drain is bounded too (graceTimeOut), so that the exit below is due within a few
        // seconds even on a loaded machine.
        "  traefik:\n    address: \"{{addr:traefik}}\"\n    transport:\n      lifeCycle:\n        requestAcceptGraceTimeout: 3s\n        graceTimeOut: 2s\n",
    );
    let proxy = start_with(
        &yaml,
        api_route()
            .replace("{{echo}}", "http://127.0.0.1:9")
            .as_str(),
        &[],
    )
    .await;
    let client = HttpClient::http1().with_timeout(Duration::from_secs(5));
    let ping = format!("{}/ping", proxy.url("traefik"));
    let reply = wait_status(
        &proxy,
        &client,
        &ping,
        200,
        ("ping to be routed", common::ROUTING_TIMEOUT),
    )
    .await;
    assert_eq!(reply.text(), "OK");
    let head = client
        .send(RequestSpec::new(http::Method::HEAD, &ping))
        .await
        .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(healthcheck(&proxy), Some(0), "healthcheck while serving");

    proxy.sigterm().unwrap();
    let reply = wait_status(
        &proxy,
        &client,
        &ping,
        503,
        ("ping to answer 503", Duration::from_secs(3)),
    )
    .await;
    assert_eq!(reply.text(), "Service Unavailable");
    assert_eq!(
        healthcheck(&proxy),
        Some(1),
        "healthcheck while terminating"
    );
    proxy.wait_exit(Duration::from_secs(15)).await.unwrap();
}

/// Runs `<proxy> healthcheck` with the proxy's static configuration; its exit code.
fn healthcheck(proxy: &ProxyUnderTest) -> Option<i32> {
    let output = std::process::Command::new(kind().path())
        .arg("healthcheck")
        .arg(format!(
            "--configFile={}",
            proxy.dir().join("static.yml").display()
        ))
        .current_dir(proxy.dir())
        .output()
        .unwrap();
    output.status.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_without_ping_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("static.yml");
    std::fs::write(
        &file,
        "entryPoints:\n  web:\n    address: \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(kind().path())
        .arg("healthcheck")
        .arg(format!("--configFile={}", file.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("please enable `ping`"), "{stdout}");
}

async fn read_lines(path: &Path, at_least: usize) -> Vec<String> {
    wait_until(
        &format!("{at_least} lines in {}", path.display()),
        Duration::from_secs(5),
        || async move {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= at_least {
                Ok(Some(lines))
            } else {
                Err(format!("{} lines", lines.len()))
            }
        },
    )
    .await
    .unwrap()
}

fn access_path(proxy: &ProxyUnderTest, name: &str) -> PathBuf {
    proxy.dir().join(name)
}

/// One CLF line split into its fields (quoted fields without their quotes).
fn clf_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line.trim_end();
    while !rest.is_empty() {
        let (field, next) = match rest.as_bytes()[0] {
            b'"' => {
                let end = rest[1..].find('"').unwrap() + 1;
                (&rest[1..end], &rest[end + 1..])
            }
            b'[' => {
                let end = rest.find(']').unwrap();
                (&rest[1..end], &rest[end + 1..])
            }
            _ => match rest.find(' ') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            },
        };
        fields.push(field.to_string());
        rest = next.trim_start();
    }
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_common_format_matches_traefik_layout() {
    let echo = EchoBackend::start("echo").await.unwrap();
    // Traefik prints the referer and user agent only when their header fields are kept.
    let yaml = static_config_with_traefik(
        "accessLog:\n  filePath: \"{{dir}}/access.log\"\n  fields:\n    headers:\n      names:\n        User-Agent: keep\n",
    );
    let proxy = start_with(&yaml, &api_route(), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/warm", "echo").await;
    let spec = RequestSpec::get(&format!("{}/path?q=1", proxy.url("web")))
        .header("host", "api.test")
        .header("referer", "http://ref.test/")
        .header("user-agent", "observe-test/1");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(
        get(&proxy, &client, "nobody.test", "/missing").await.status,
        404
    );

    let path = access_path(&proxy, "access.log");
    let lines = read_lines(&path, 3).await;
    let line = lines.iter().find(|l| l.contains("/path?q=1")).unwrap();
    let f = clf_fields(line);
    assert_eq!(f.len(), 13, "{line}");
    assert_eq!(f[0], "127.0.0.1");
    assert_eq!((f[1].as_str(), f[2].as_str()), ("-", "-"));
    assert!(
        f[3].ends_with(" +0000") && f[3].len() == 26,
        "time {:?}",
        f[3]
    );
    assert_eq!(f[4], "GET /path?q=1 HTTP/1.1");
    assert_eq!(f[5], "200");
    assert_eq!(f[6], reply.body.len().to_string());
    assert_eq!(f[7], "-", "the Referer header field is dropped by default");
    assert_eq!(f[8], "observe-test/1");
    assert!(f[9].parse::<u64>().unwrap() >= 2, "RequestCount");
    assert_eq!(f[10], "api@file");
    assert_eq!(f[11], echo.url().trim_end_matches('/'));
    assert!(f[12].ends_with("ms"));

    let missing = lines.iter().find(|l| l.contains("/missing")).unwrap();
    let f = clf_fields(missing);
    assert_eq!(f[5], "404");
    assert_eq!(
        (f[7].as_str(), f[10].as_str(), f[11].as_str()),
        ("-", "-", "-")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_json_fields_filters_and_headers() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(
        r#"accessLog:
  filePath: "{{dir}}/access.json"
  format: json
  filters:
    statusCodes: ["200-299"]
  fields:
    names:
      StartLocal: drop
    headers:
      names:
        User-Agent: keep
        Authorization: redact
"#,
    );
    let dynamic = api_route().replacen(
        "  services:\n",
        "    quiet:\n      rule: \"Host(`quiet.test`)\"\n      service: echo\n      observability:\n        accessLogs: false\n  services:\n",
        1,
    );
    let proxy = start_with(&yaml, &dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/warm", "echo").await;
    assert_eq!(
        get(&proxy, &client, "nobody.test", "/filtered-out")
            .await
            .status,
        404
    );
    wait_backend(&proxy, &client, "quiet.test", "/not-logged", "echo").await;
    let spec = RequestSpec::new(
        http::Method::POST,
        &format!("{}/json?x=1", proxy.url("web")),
    )
    .header("host", "api.test")
    .header("user-agent", "observe-test/2")
    .header("authorization", "Bearer secret")
    .body(RequestBody::Bytes("12345678".into()));
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 200);

    let path = access_path(&proxy, "access.json");
    let lines = read_lines(&path, 2).await;
    assert!(
        !lines.iter().any(|l| l.contains("/filtered-out")),
        "statusCodes filter keeps only 2xx"
    );
    assert!(
        !lines.iter().any(|l| l.contains("/not-logged")),
        "observability.accessLogs: false"
    );
    let line = lines.iter().find(|l| l.contains("/json?x=1")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["ClientHost"], "127.0.0.1");
    assert_eq!(v["ClientUsername"], "-");
    assert_eq!(v["RequestMethod"], "POST");
    assert_eq!(v["RequestPath"], "/json?x=1");
    assert_eq!(v["RequestHost"], "api.test");
    assert_eq!(v["RequestProtocol"], "HTTP/1.1");
    assert_eq!(v["RequestScheme"], "http");
    assert_eq!(v["RequestContentSize"], 8);
    assert_eq!(v["DownstreamStatus"], 200);
    assert_eq!(v["OriginStatus"], 200);
    assert_eq!(v["DownstreamContentSize"], reply.body.len());
    assert_eq!(v["RouterName"], "api@file");
    assert_eq!(v["ServiceName"], "echo@file");
    assert_eq!(v["ServiceURL"], echo.url().trim_end_matches('/'));
    assert_eq!(v["entryPointName"], "web");
    assert_eq!(v["RetryAttempts"], 0);
    assert!(v["Duration"].as_u64().unwrap() >= v["OriginDuration"].as_u64().unwrap());
    assert!(v["StartUTC"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("StartLocal").is_none(), "dropped by fields.names");
    assert_eq!(v["request_User-Agent"], "observe-test/2");
    assert_eq!(v["request_Authorization"], "REDACTED");
    assert!(
        v.get("request_Accept").is_none(),
        "headers are dropped by default"
    );
    assert_eq!(v["level"], "info");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_reopens_after_rotation_on_sigusr1() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik("accessLog:\n  filePath: \"{{dir}}/access.log\"\n");
    let proxy = start_with(&yaml, &api_route(), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/before", "echo").await;
    let path = access_path(&proxy, "access.log");
    read_lines(&path, 1).await;
    let rotated = access_path(&proxy, "access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-USR1", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The reopen is asynchronous: retry until a request lands in the new file.
    wait_until(
        "a line in the reopened file",
        Duration::from_secs(5),
        || {
            let proxy = &proxy;
            let client = &client;
            let path = &path;
            async move {
                get(proxy, client, "api.test", "/after").await;
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if text.contains("/after") {
                    Ok(Some(()))
                } else {
                    Err("not yet".into())
                }
            }
        },
    )
    .await
    .unwrap();
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("/before"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_log_goes_to_file_as_json() {
    let yaml = static_config_with_traefik("").replace(
        "log:\n  level: DEBUG\n",
        "log:\n  level: INFO\n  format: json\n  filePath: \"{{dir}}/viaduct.log\"\n",
    );
    let proxy = start_with(
        &yaml,
        api_route()
            .replace("{{echo}}", "http://127.0.0.1:9")
            .as_str(),
        &[],
    )
    .await;
    let path = access_path(&proxy, "viaduct.log");
    let lines = read_lines(&path, 1).await;
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_collector_and_the_backend_continues_them() {
    let collector = otlp::Collector::start().await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik(&format!(
        "tracing:\n  serviceName: viaduct-test\n  resourceAttributes:\n    deployment.environment: test\n  otlp:\n    http:\n      endpoint: \"http://127.0.0.1:{}/v1/traces\"\n",
        collector.port
    ));
    let proxy = start_with(&yaml, &api_route(), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "api.test", "/warm", "echo").await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let spec = RequestSpec::get(&format!("{}/traced?q=1", proxy.url("web")))
        .header("host", "api.test")
        .header("traceparent", &format!("00-{trace}-{parent}-01"));
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 200);
    let seen = reply.echo().unwrap();
    let sent = seen.header("traceparent").unwrap().to_string();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts[1], trace, "the backend continues the client's trace");
    assert_ne!(parts[2], parent, "with the proxy's span as its parent");

    let spans = wait_until("the trace's spans", Duration::from_secs(10), || {
        let spans = collector.spans_of(trace);
        async move {
            if spans.len() >= 2 {
                Ok(Some(spans))
            } else {
                Err(format!("{} spans: {spans:#?}", spans.len()))
            }
        }
    })
    .await
    .unwrap();
    // Traefik 3.7 at the default verbosity: the entry point's server span, named after the
    // method, and the backend call.
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
            .clone()
    };
    let entry = named("GET");
    let call = named("ReverseProxy");
    assert_eq!(entry.parent_span_id, parent);
    assert_eq!(entry.kind, 2, "server");
    assert_eq!(call.parent_span_id, entry.span_id);
    assert_eq!(call.kind, 3, "client");
    assert_eq!(
        call.span_id, parts[2],
        "the backend's parent is the ReverseProxy span"
    );
    assert_eq!(entry.attributes["entry_point"], "web");
    assert_eq!(entry.attributes["http.request.method"], "GET");
    assert_eq!(entry.attributes["http.response.status_code"], "200");
    assert_eq!(entry.attributes["url.path"], "/traced");
    assert_eq!(entry.attributes["url.query"], "q=REDACTED");
    assert_eq!(entry.attributes["server.address"], "api.test");
    assert_eq!(call.attributes["http.response.status_code"], "200");
    assert_eq!(
        call.attributes["url.full"],
        format!("{}/traced?q=REDACTED", echo.url().trim_end_matches('/'))
    );
    assert_eq!(entry.resource["service.name"], "viaduct-test");
    assert_eq!(entry.resource["deployment.environment"], "test");

    // Without a traceparent, a new sampled trace starts and reaches the backend.
    let reply = get(&proxy, &client, "api.test", "/fresh").await;
    let fresh = reply
        .echo()
        .unwrap()
        .header("traceparent")
        .unwrap()
        .to_string();
    assert!(
        fresh.starts_with("00-") && fresh.ends_with("-01"),
        "{fresh}"
    );
    assert_ne!(fresh.split('-').nth(1), Some(trace));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl"]
async fn tls_requests_are_counted_by_version_and_cipher() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let yaml = static_config_with_traefik("metrics:\n  prometheus:\n    addRoutersLabels: true\n");
    let dynamic = api_route().replacen(
        "      service: echo\n",
        "      service: echo\n      tls: {}\n",
        1,
    );
    let proxy = start_with(&yaml, &dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let port = proxy.port("web");
    let curl = || {
        let output = std::process::Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg("--resolve")
            .arg(format!("api.test:{port}:127.0.0.1"))
            .arg(format!("https://api.test:{port}/tls"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    wait_until("the TLS router", common::ROUTING_TIMEOUT, || {
        let code = curl();
        async move {
            if code == "200" {
                Ok(Some(()))
            } else {
                Err(code)
            }
        }
    })
    .await
    .unwrap();
    let before = scrape(&proxy, &client).await;
    for _ in 0..3 {
        assert_eq!(curl(), "200");
    }
    let after = scrape(&proxy, &client).await;
    // The cipher is the server's choice (Go prefers AES-128, rustls AES-256); its name must be
    // Go's either way.
    let cipher = after
        .samples
        .iter()
        .find(|(n, _, _)| n == "traefik_entrypoint_requests_tls_total")
        .map(|(_, l, _)| l["tls_cipher"].clone())
        .unwrap();
    assert!(
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"
        ]
        .contains(&cipher.as_str()),
        "{cipher}"
    );
    for (name, extra) in [
        (
            "traefik_entrypoint_requests_tls_total",
            ("entrypoint", "web"),
        ),
        ("traefik_router_requests_tls_total", ("router", "api@file")),
        (
            "traefik_service_requests_tls_total",
            ("service", "echo@file"),
        ),
    ] {
        let labels = [
            ("tls_version", "1.3"),
            ("tls_cipher", cipher.as_str()),
            extra,
        ];
        let delta = after.value_or_zero(name, &labels) - before.value_or_zero(name, &labels);
        assert_eq!(delta, 3.0, "{name}");
    }
    let sorted = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for labels in after.label_names("traefik_router_requests_tls_total") {
        assert_eq!(
            labels,
            sorted(&["router", "service", "tls_cipher", "tls_version"])
        );
    }
}

/// Polls GET `url` until it answers `status`, within `timeout` (`what` names the wait).
async fn wait_status(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    url: &str,
    status: u16,
    (what, timeout): (&str, Duration),
) -> viaduct_testkit::Reply {
    proxy
        .wait_for(what, timeout, || async move {
            match client.get(url).await {
                Ok(r) if r.status == status => Ok(Some(r)),
                Ok(r) => Err(format!("status {}", r.status)),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .unwrap()
}
