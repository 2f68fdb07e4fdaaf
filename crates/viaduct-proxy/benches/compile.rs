//! Compiling a dynamic configuration into a snapshot: the first load and the reload path
//! (previous snapshot given, so transports and balancer state carry over).
//!
//! `cargo bench -p viaduct-proxy --bench compile`
//!
//! The forwarded-header rewriting is private to the request pipeline and has no public entry
//! point, so it is measured end to end by `bench/scale/run` and `bench/run` instead.

// Benchmark fixtures are fixed, known-good inputs: a failure is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use divan::{black_box, Bencher};
use viaduct_config::{
    parse_document, DynamicConfig, Format, HttpConfig, LoadBalancer, Origin, Router, Server,
    Service,
};
use viaduct_proxy::{compile, CompileContext, EntryPointInfo, Protocol, Snapshot};
use viaduct_tls::TlsShared;
use viaduct_upstream::TransportSettings;

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [10, 1_000, 10_000];

/// `count` routers `Host(`svc-N.example.com`)`, each with its own one-server service, as a
/// file provider would deliver them (names qualified with `@file`).
fn config(count: usize) -> DynamicConfig {
    let mut http = HttpConfig::default();
    for n in 0..count {
        let service = format!("svc-{n}@file");
        http.routers.insert(
            format!("router-{n}@file"),
            Router {
                entry_points: vec!["web".to_owned()],
                service: service.clone(),
                rule: format!("Host(`svc-{n}.example.com`)"),
                ..Router::default()
            },
        );
        http.services.insert(
            service,
            Service {
                load_balancer: Some(LoadBalancer {
                    servers: vec![Server {
                        url: format!("http://127.0.0.1:{}", 10_000 + n % 50_000),
                        ..Server::default()
                    }],
                    ..LoadBalancer::default()
                }),
                ..Service::default()
            },
        );
    }
    DynamicConfig {
        http: Some(http),
        ..DynamicConfig::default()
    }
}

fn context() -> CompileContext {
    CompileContext {
        entry_points: vec![EntryPointInfo {
            name: "web".to_owned(),
            as_default: true,
            protocol: Protocol::Tcp,
            port: 80,
            default_tls: None,
            redirect: None,
        }],
        default_transport: TransportSettings::from_static(&Default::default()),
        tls: Arc::new(TlsShared::new().unwrap()),
        api: None,
        observe: Default::default(),
        tcp_transport: Default::default(),
    }
}

fn checked(snapshot: Snapshot, routers: usize) -> Snapshot {
    assert_eq!(snapshot.entry_points[0].routers.len(), routers);
    assert!(snapshot.status.is_clean(), "{:?}", snapshot.status);
    snapshot
}

/// The first load: nothing to reuse.
#[divan::bench(args = SIZES, sample_count = 20)]
fn first_compile(bencher: Bencher, routers: usize) {
    let config = config(routers);
    let ctx = context();
    let first = checked(compile(&config, &ctx, None, 1), routers);
    drop(first);
    bencher.bench_local(|| compile(black_box(&config), &ctx, None, 1));
}

/// A reload of an unchanged configuration: the previous snapshot lends transports and
/// balancer state.
#[divan::bench(args = SIZES, sample_count = 20)]
fn recompile_with_previous(bencher: Bencher, routers: usize) {
    let config = config(routers);
    let ctx = context();
    let previous = checked(compile(&config, &ctx, None, 1), routers);
    bencher.bench_local(|| compile(black_box(&config), &ctx, Some(&previous), 2));
}

/// A reload with the static `api` section on: the snapshot also carries the API's view of
/// every router, service and middleware.
#[divan::bench(args = SIZES, sample_count = 20)]
fn recompile_with_api(bencher: Bencher, routers: usize) {
    let config = config(routers);
    let static_config = viaduct_config::StaticConfig {
        api: Some(viaduct_config::static_config::Api::default()),
        ..Default::default()
    };
    let ctx = CompileContext {
        api: viaduct_api::ApiInfo::from_static(&static_config, std::time::SystemTime::now())
            .map(Arc::new),
        ..context()
    };
    let previous = checked(compile(&config, &ctx, None, 1), routers);
    assert!(previous.api.is_some());
    bencher.bench_local(|| compile(black_box(&config), &ctx, Some(&previous), 2));
}

/// A reload where one router in the middle changed its rule.
#[divan::bench(args = SIZES, sample_count = 20)]
fn recompile_one_router_changed(bencher: Bencher, routers: usize) {
    let config_before = config(routers);
    let mut config_after = config_before.clone();
    if let Some(http) = config_after.http.as_mut() {
        let name = format!("router-{}@file", routers / 2);
        if let Some(router) = http.routers.get_mut(&name) {
            router.rule = "Host(`changed.example.com`)".to_owned();
        }
    }
    let ctx = context();
    let previous = checked(compile(&config_before, &ctx, None, 1), routers);
    bencher.bench_local(|| compile(black_box(&config_after), &ctx, Some(&previous), 2));
}

/// The same configuration as a YAML file from the file provider: parsing it precedes every
/// compile on a reload.
#[divan::bench(args = SIZES, sample_count = 10)]
fn parse_yaml(bencher: Bencher, routers: usize) {
    let yaml = yaml(routers);
    let parsed: DynamicConfig =
        parse_document(&yaml, Format::Yaml, Origin::Inline("bench")).unwrap();
    assert_eq!(parsed.http.map(|http| http.routers.len()), Some(routers));
    bencher.bench_local(|| {
        parse_document::<DynamicConfig>(black_box(&yaml), Format::Yaml, Origin::Inline("bench"))
    });
}

/// The layout `bench/scale/lib.py` writes.
fn yaml(count: usize) -> String {
    let mut out = String::from("http:\n  routers:\n");
    for n in 0..count {
        out.push_str(&format!(
            "    router-{n}:\n      rule: \"Host(`svc-{n}.example.com`)\"\n      service: svc-{n}\n"
        ));
    }
    out.push_str("  services:\n");
    for n in 0..count {
        out.push_str(&format!(
            "    svc-{n}:\n      loadBalancer:\n        servers: [{{url: \"http://127.0.0.1:{}\"}}]\n",
            10_000 + n % 50_000
        ));
    }
    out
}

/// A reload from 10,000 routers down to `routers`: what the previous snapshot's size costs.
#[divan::bench(args = [10, 1_000], sample_count = 20)]
fn recompile_shrinking_from_10000(bencher: Bencher, routers: usize) {
    let ctx = context();
    let previous = checked(compile(&config(10_000), &ctx, None, 1), 10_000);
    let config = config(routers);
    bencher.bench_local(|| compile(black_box(&config), &ctx, Some(&previous), 2));
}
