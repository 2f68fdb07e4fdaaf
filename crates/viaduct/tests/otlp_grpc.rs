//! `tracing.otlp.grpc` and `metrics.otlp.grpc`: spans and metrics arrive at a gRPC collector as
//! OTLP export calls. The test also runs against Traefik (`VIADUCT_E2E_PROXY=traefik`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{get, start_with, static_config, wait_backend};
use viaduct_testkit::{wait_until, EchoBackend, GrpcCollector, HttpClient};

const TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_are_exported_over_grpc() {
    let collector = GrpcCollector::start().await.unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let grpc = format!(
        "    grpc:\n      endpoint: \"{}\"\n      insecure: true\n      headers:\n        x-api-key: secret\n",
        collector.authority()
    );
    let static_yaml = format!(
        "{}tracing:\n  otlp:\n{grpc}metrics:\n  otlp:\n    pushInterval: 200ms\n{grpc}",
        static_config("")
    );
    let dynamic = "http:\n  routers:\n    app:\n      rule: \"Host(`app.test`)\"\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"{{echo}}\"\n";
    let proxy = start_with(&static_yaml, dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/", "echo").await;
    assert_eq!(
        get(&proxy, &client, "app.test", "/traced").await.status,
        200
    );

    // Traefik may export an empty request first; what counts is that data arrives.
    let with_data = |calls: &[viaduct_testkit::GrpcCall], path: &str| {
        calls
            .iter()
            .any(|c| c.path == path && !c.message().is_empty())
    };
    wait_until(
        "spans and metrics over gRPC",
        Duration::from_secs(20),
        || {
            let calls = collector.calls();
            async move {
                if with_data(&calls, TRACES) && with_data(&calls, METRICS) {
                    Ok(Some(()))
                } else {
                    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
                    Err(format!("calls so far: {paths:?}"))
                }
            }
        },
    )
    .await
    .unwrap();
    for call in collector.calls() {
        assert_eq!(
            call.headers["content-type"], "application/grpc",
            "{}",
            call.path
        );
        assert_eq!(call.headers["x-api-key"], "secret", "{}", call.path);
    }
    let spans = collector
        .calls()
        .into_iter()
        .find(|c| c.path == TRACES)
        .unwrap();
    assert!(
        spans.message().windows(7).any(|w| w == b"/traced"),
        "the request's path is in the exported spans"
    );
}
