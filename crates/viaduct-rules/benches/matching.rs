//! Router lookup, rule compilation and request-fact extraction: the per-request and
//! per-reload costs of the rule language.
//!
//! `cargo bench -p viaduct-rules --bench matching`

// Benchmark fixtures are fixed, known-good inputs: a failure is a broken benchmark.
#![allow(clippy::unwrap_used)]

use divan::{black_box, Bencher};
use http::{HeaderMap, HeaderValue, Method, Uri};
use viaduct_rules::{
    canonical_host, effective_priority, parse_http, routing_path, RequestFacts, RouterEntry,
    RouterTable,
};

fn main() {
    divan::main();
}

/// Routers that no host index can narrow down, as a real configuration has a few of.
const GENERIC_RULES: &[&str] = &[
    "PathPrefix(`/metrics`)",
    "PathPrefix(`/.well-known/`) && Method(`GET`)",
    "HostRegexp(`^[a-z]+\\.internal\\.example\\.net$`)",
    "Header(`X-Canary`, `1`) && PathPrefix(`/beta`)",
];

const TYPICAL_RULE: &str =
    "Host(`api.example.com`) && (PathPrefix(`/v1`) || PathPrefix(`/v2`)) && (Method(`GET`) || Method(`POST`))";

/// `count` routers of `Host(`svc-N.example.com`)` plus the generic ones.
fn table(count: usize) -> RouterTable<usize> {
    let host_rules = (0..count).map(|n| format!("Host(`svc-{n}.example.com`)"));
    let generic = GENERIC_RULES.iter().map(|r| r.to_string());
    let entries = host_rules
        .chain(generic)
        .enumerate()
        .map(|(index, rule)| {
            let rule = parse_http(&rule).unwrap();
            let priority = effective_priority(0, rule.default_priority()).unwrap();
            RouterEntry {
                rule,
                priority,
                tiebreak: index,
                value: index,
            }
        })
        .collect();
    RouterTable::new(entries)
}

fn facts<'a>(host: &'a str, headers: &'a HeaderMap) -> RequestFacts<'a> {
    RequestFacts {
        host,
        path: "/api/users/42",
        method: &Method::GET,
        headers,
        query: Some("page=2"),
        client_ip: Some([127, 0, 0, 1].into()),
    }
}

/// A host in the middle of the table: the lookup cost should not depend on the router count.
#[divan::bench(args = [10, 1_000, 10_000])]
fn find_host_in_middle(bencher: Bencher, routers: usize) {
    let table = table(routers);
    let host = format!("svc-{}.example.com", routers / 2);
    let headers = HeaderMap::new();
    bencher.bench_local(|| {
        let found = table.find(black_box(&facts(&host, &headers)));
        assert!(found.is_some());
        found.copied()
    });
}

/// A host no router names: every generic router is evaluated, then nothing matches.
#[divan::bench(args = [10, 1_000, 10_000])]
fn find_unknown_host(bencher: Bencher, routers: usize) {
    let table = table(routers);
    let headers = HeaderMap::new();
    bencher.bench_local(|| table.find(black_box(&facts("nowhere.example.org", &headers))));
}

/// The same lookup by trying every router in order: what the host index saves.
#[divan::bench(args = [10, 1_000])]
fn find_linear_host_in_middle(bencher: Bencher, routers: usize) {
    let table = table(routers);
    let host = format!("svc-{}.example.com", routers / 2);
    let headers = HeaderMap::new();
    bencher.bench_local(|| table.find_linear(black_box(&facts(&host, &headers))));
}

#[divan::bench]
fn parse_typical_rule() -> viaduct_rules::HttpRule {
    parse_http(black_box(TYPICAL_RULE)).unwrap()
}

#[divan::bench]
fn parse_host_regexp_rule() -> viaduct_rules::HttpRule {
    parse_http(black_box(
        "HostRegexp(`^[a-z0-9-]+\\.example\\.com$`) && PathRegexp(`^/v[0-9]+/`)",
    ))
    .unwrap()
}

/// Building a table of `routers` pre-parsed rules (sorting and indexing only).
#[divan::bench(args = [10, 1_000, 10_000])]
fn build_table(bencher: Bencher, routers: usize) {
    let rules: Vec<_> = (0..routers)
        .map(|n| parse_http(&format!("Host(`svc-{n}.example.com`)")).unwrap())
        .collect();
    bencher
        .with_inputs(|| rules.clone())
        .bench_local_values(|rules| {
            let entries = rules
                .into_iter()
                .enumerate()
                .map(|(index, rule)| RouterEntry {
                    priority: rule.default_priority(),
                    rule,
                    tiebreak: index,
                    value: index,
                })
                .collect();
            RouterTable::new(entries)
        });
}

#[divan::bench(args = ["/api/users/42", "/files/a%20b/c%2Fd", "/search%3Fq%3D%C3%A9"])]
fn routing_path_of(path: &str) -> usize {
    routing_path(black_box(path)).map_or(0, |p| p.len())
}

#[divan::bench(args = ["svc-500.example.com", "svc-500.example.com:8080", "SVC-500.Example.COM."])]
fn canonical_host_from_header(bencher: Bencher, host: &str) {
    let uri: Uri = "/api/users/42".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_str(host).unwrap());
    bencher.bench_local(|| canonical_host(black_box(&uri), black_box(&headers)).len());
}

#[divan::bench]
fn canonical_host_from_absolute_uri(bencher: Bencher) {
    let uri: Uri = "http://svc-500.example.com:8080/api/users/42"
        .parse()
        .unwrap();
    let headers = HeaderMap::new();
    bencher.bench_local(|| canonical_host(black_box(&uri), black_box(&headers)).len());
}
