//! `metrics.statsD` and `metrics.datadog`: the lines a real UDP listener receives, with
//! Traefik's names. Every test also runs against Traefik (`VIADUCT_E2E_PROXY=traefik`).

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
