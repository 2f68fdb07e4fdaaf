//! The pushed metrics backends — `metrics.statsD`, `metrics.datadog` (lines a real UDP listener
//! receives) and `metrics.influxDB2` (writes a real HTTP listener receives) — with Traefik's
//! names. Every test also runs against Traefik (`VIADUCT_E2E_PROXY=traefik`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{get, start_with, static_config, wait_backend};
use tokio::net::UdpSocket;
use viaduct_testkit::{EchoBackend, HttpClient, ProxyUnderTest};

/// Every line received until `done` says the lines so far are enough (bounded).
async fn receive_until(socket: &UdpSocket, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while !done(&lines) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => lines.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            ),
            _ => panic!("not all metrics arrived; received:\n{}", lines.join("\n")),
        }
    }
    lines
}

/// The sum of the values of `name`'s lines that contain every one of `parts`.
fn total(lines: &[String], name: &str, parts: &[&str]) -> f64 {
    lines
        .iter()
        .filter(|l| l.starts_with(&format!("{name}:")) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l[name.len() + 1..].split('|').next()?.parse::<f64>().ok())
        .sum()
}

async fn proxy_with(metrics: &str, echo: &EchoBackend) -> (ProxyUnderTest, HttpClient) {
    let static_yaml = format!("{}metrics:\n{metrics}", static_config(""));
    let dynamic = "http:\n  routers:\n    app:\n      rule: \"Host(`app.test`)\"\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"{{echo}}\"\n";
    let proxy = start_with(&static_yaml, dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/", echo.name()).await;
    (proxy, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsd_receives_request_counts_and_timings() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let metrics = format!(
        "  statsD:\n    address: \"{}\"\n    pushInterval: 200ms\n",
        socket.local_addr().unwrap()
    );
    let (proxy, client) = proxy_with(&metrics, &echo).await;
    for _ in 0..3 {
        assert_eq!(get(&proxy, &client, "app.test", "/").await.status, 200);
    }
    // The readiness probes count too: at least the three requests above arrive.
    let lines = receive_until(&socket, |lines| {
        total(lines, "traefik.entrypoint.request.total", &[]) >= 3.0
            && total(lines, "traefik.service.request.total", &[]) >= 3.0
            && lines
                .iter()
                .any(|l| l.starts_with("traefik.entrypoint.request.duration:"))
    })
    .await;
    let timing = lines
        .iter()
        .find(|l| l.starts_with("traefik.entrypoint.request.duration:"))
        .unwrap();
    assert!(
        timing.contains("|ms"),
        "StatsD timings are in milliseconds: {timing}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("|#")),
        "StatsD has no tags:\n{}",
        lines.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_receives_tagged_lines() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let metrics = format!(
        "  datadog:\n    address: \"{}\"\n    pushInterval: 200ms\n    prefix: edge\n",
        socket.local_addr().unwrap()
    );
    let (proxy, client) = proxy_with(&metrics, &echo).await;
    for _ in 0..2 {
        assert_eq!(get(&proxy, &client, "nowhere.test", "/").await.status, 404);
    }
    let lines = receive_until(&socket, |lines| {
        total(
            lines,
            "edge.entrypoint.request.total",
            &["code:404", "entrypoint:web"],
        ) >= 2.0
            && total(
                lines,
                "edge.service.request.total",
                &["code:200", "service:app@file"],
            ) >= 1.0
    })
    .await;
    let counter = lines
        .iter()
        .find(|l| l.starts_with("edge.entrypoint.request.total:") && l.contains("code:404"))
        .unwrap();
    for part in ["|c", "method:GET", "protocol:http"] {
        assert!(counter.contains(part), "{part} not in {counter}");
    }
}

/// `metrics.influxDB2`: line protocol POSTed to `/api/v2/write` of a real HTTP listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb2_receives_points() {
    let influx = viaduct_testkit::RawRecorder::start("influx").await.unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let metrics = format!(
        "  influxDB2:\n    address: \"{}\"\n    token: s3cret\n    org: acme\n    bucket: edge\n    pushInterval: 200ms\n",
        influx.url()
    );
    let (proxy, client) = proxy_with(&metrics, &echo).await;
    assert_eq!(get(&proxy, &client, "app.test", "/").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let write = loop {
        let found = influx.requests().into_iter().find(|r| {
            String::from_utf8_lossy(&r.body).contains("traefik.entrypoint.requests.total,")
        });
        if let Some(write) = found {
            break write;
        }
        assert!(
            Instant::now() < deadline,
            "no write arrived: {:?}",
            influx.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(write.method, "POST");
    assert!(
        write.target.starts_with("/api/v2/write?")
            && write.target.contains("org=acme")
            && write.target.contains("bucket=edge"),
        "{}",
        write.target
    );
    assert_eq!(write.header("authorization"), Some("Token s3cret"));
    let body = String::from_utf8_lossy(&write.body).into_owned();
    let line = body
        .lines()
        .find(|l| l.starts_with("traefik.entrypoint.requests.total,") && l.contains("code=200"))
        .unwrap_or_else(|| panic!("no 200 counter in\n{body}"));
    assert!(
        line.contains("entrypoint=web") && line.contains(" count="),
        "{line}"
    );
}
