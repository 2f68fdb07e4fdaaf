//! What observation costs a request: one exchange begun, finished and its body dropped, with
//! metrics only, with the JSON access log only, and with both; and the writer's formatting
//! cost per line (paid off the request path).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use http::{Request, Response};
use viaduct_config::static_config::{AccessLog, Metrics, Prometheus};
use viaduct_observe::access_log::format_line;
use viaduct_observe::metrics::{MethodLabel, Observation, ProtocolLabel, SeriesKey};
use viaduct_observe::{
    AccessLog as Log, AccessLogSettings, EntryPointObserver, Hub, MetricsSettings, Registry,
    RouteObserver,
};
use viaduct_upstream::full_body;

fn main() {
    divan::main();
}

fn metrics() -> Registry {
    let config = Metrics {
        prometheus: Some(Prometheus {
            add_routers_labels: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    Registry::new(MetricsSettings::from_static(&config).unwrap())
}

fn access_log(dir: &tempfile::TempDir) -> Log {
    let config = AccessLog {
        file_path: Some(dir.path().join("access.json").display().to_string()),
        format: "json".into(),
        buffering_size: 100_000,
        ..Default::default()
    };
    Log::start(AccessLogSettings::from_static(&config).unwrap()).unwrap()
}

fn run(bencher: Bencher, hub: Hub) {
    let hub = Arc::new(hub);
    let entry_point = EntryPointObserver::new("web", &hub);
    let route = RouteObserver::new(&hub, "api@file", "echo@file", Default::default()).map(Arc::new);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let request = Request::builder()
        .uri("/api/users?id=7")
        .header("host", "api.test")
        .header("user-agent", "bench/1")
        .body(())
        .unwrap();
    bencher.bench_local(|| {
        let exchange = entry_point.begin(&request, peer, false, None);
        let response = Response::new(full_body(&b"hello world"[..]));
        let response = match exchange {
            Some(e) => e.finish(response, route.as_ref()),
            None => response,
        };
        drop(divan::black_box(response));
    });
}

#[divan::bench]
fn exchange_nothing_observed(bencher: Bencher) {
    run(bencher, Hub::default());
}

#[divan::bench]
fn exchange_metrics(bencher: Bencher) {
    run(
        bencher,
        Hub {
            metrics: Some(std::sync::Arc::new(metrics())),
            ..Default::default()
        },
    );
}

#[divan::bench]
fn exchange_json_access_log(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    run(
        bencher,
        Hub {
            access_log: Some(access_log(&dir)),
            ..Default::default()
        },
    );
}

#[divan::bench]
fn exchange_metrics_and_json_access_log(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    run(
        bencher,
        Hub {
            metrics: Some(std::sync::Arc::new(metrics())),
            access_log: Some(access_log(&dir)),
            ..Default::default()
        },
    );
}

#[divan::bench]
fn series_record(bencher: Bencher) {
    let registry = metrics();
    let table = registry.entry_point("web").unwrap();
    let observation = Observation {
        key: SeriesKey {
            method: MethodLabel::Get,
            code: 200,
            protocol: ProtocolLabel::Http,
        },
        duration: Duration::from_micros(250),
        request_bytes: 0,
        response_bytes: 11,
    };
    bencher.bench_local(|| table.record(divan::black_box(&observation)));
}

#[divan::bench]
fn format_json_line_on_the_writer(bencher: Bencher) {
    let settings = AccessLogSettings::from_static(&AccessLog {
        format: "json".into(),
        ..Default::default()
    })
    .unwrap();
    let record = viaduct_observe::AccessRecord {
        start: std::time::SystemTime::now(),
        duration: Duration::from_micros(300),
        client: "127.0.0.1:40000".parse().unwrap(),
        method: http::Method::GET,
        path: "/api/users?id=7".into(),
        version: http::Version::HTTP_11,
        host: "api.test".into(),
        tls: false,
        request_content_size: 0,
        entry_point: Arc::from("web"),
        router: Some(Arc::from("api@file")),
        service: Some(Arc::from("echo@file")),
        upstream: None,
        status: 200,
        downstream_size: 11,
        request_count: 1,
        retry_attempts: 0,
        client_username: None,
        referer: None,
        user_agent: None,
        request_headers: None,
        response_headers: None,
    };
    bencher.bench_local(|| format_line(&settings, divan::black_box(&record)));
}

#[divan::bench]
fn render_exposition_100_routers(bencher: Bencher) {
    let registry = metrics();
    let routers: Vec<_> = (0..100)
        .map(|i| {
            let table = registry.router(&format!("r{i}@file"), "s@file").unwrap();
            table.record(&Observation {
                key: SeriesKey {
                    method: MethodLabel::Get,
                    code: 200,
                    protocol: ProtocolLabel::Http,
                },
                duration: Duration::from_millis(1),
                request_bytes: 0,
                response_bytes: 1,
            });
            table
        })
        .collect();
    bencher.bench_local(|| registry.render(&Default::default()));
    drop(routers);
}
