//! Routing as a user sees it: rules, priorities, 404s, load balancing, references, and the
//! isolation of broken routers.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::{backend_vars, echoed, get, load_balancers, start, start_routed, wait_backend};
use viaduct_testkit::{EchoBackend, HttpClient, ProxyUnderTest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_path_prefix_rules_pick_their_service() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let proxy = start_routed(
        r#"
    by-host:
      rule: "Host(`a.test`)"
      service: a
    by-prefix:
      rule: "PathPrefix(`/b`)"
      service: b
"#,
        &[&a, &b],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "a.test", "/", "a").await;

    assert_eq!(
        get(&proxy, &client, "A.TEST", "/x").await.backend(),
        Some("a"),
        "host match is case-insensitive"
    );
    assert_eq!(
        get(&proxy, &client, "a.test:8080", "/").await.backend(),
        Some("a"),
        "port is ignored"
    );
    assert_eq!(
        get(&proxy, &client, "other.test", "/b/c").await.backend(),
        Some("b")
    );
    assert_eq!(
        get(&proxy, &client, "other.test", "/bee").await.backend(),
        Some("b"),
        "prefix is textual"
    );
    // Both match; the longer rule wins: PathPrefix(`/b`) is 16 characters, Host(`a.test`) 14.
    assert_eq!(
        get(&proxy, &client, "a.test", "/b").await.backend(),
        Some("b")
    );
    let echo = echoed(&proxy, &client, "a.test", "/path?q=1").await;
    assert_eq!(echo.uri, "/path?q=1", "path and query forwarded unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_request_gets_404_page_not_found() {
    let a = EchoBackend::start("a").await.unwrap();
    let proxy = start_routed(
        r#"
    only:
      rule: "Host(`a.test`)"
      service: a
"#,
        &[&a],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "a.test", "/", "a").await;
    let reply = get(&proxy, &client, "b.test", "/").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), "404 page not found\n");
    assert_eq!(a.hits(), 1, "the unmatched request never reached a backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_priority_beats_rule_length() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let proxy = start_routed(
        r#"
    short-but-high:
      rule: "PathPrefix(`/api`)"
      priority: 100
      service: a
    long-default:
      rule: "PathPrefix(`/api/v2`)"
      service: b
    my:
      rule: "PathPrefix(`/my`)"
      service: a
    mypath:
      rule: "PathPrefix(`/mypath`)"
      service: b
"#,
        &[&a, &b],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "x.test", "/api", "a").await;
    assert_eq!(
        get(&proxy, &client, "x.test", "/api/v2/users")
            .await
            .backend(),
        Some("a")
    );
    // Without explicit priorities the longer rule wins.
    assert_eq!(
        get(&proxy, &client, "x.test", "/mypath").await.backend(),
        Some("b")
    );
    assert_eq!(
        get(&proxy, &client, "x.test", "/my").await.backend(),
        Some("a")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_service_splits_by_weight() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let services = load_balancers(&["a", "b"]);
    let proxy = start(
        &format!(
            r#"
http:
  routers:
    split:
      rule: "PathPrefix(`/`)"
      service: split
  services:
    split:
      weighted:
        services:
          - name: a
            weight: 3
          - name: b
            weight: 1
{services}"#
        ),
        &backend_vars(&[&a, &b]),
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "x.test", "/", "a").await;
    let (na, nb) = split(&proxy, &client, 40, (&a, &b)).await;
    // Weighted round robin is deterministic: 3:1 over every cycle of 4, give or take one cycle.
    assert!(
        (26..=34).contains(&na),
        "a got {na}, b got {nb}; expected about 30/10"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_between_two_servers() {
    let one = EchoBackend::start("one").await.unwrap();
    let two = EchoBackend::start("two").await.unwrap();
    let proxy = start(
        r#"
http:
  routers:
    all:
      rule: "PathPrefix(`/`)"
      service: pool
  services:
    pool:
      loadBalancer:
        servers:
          - url: "{{one}}"
          - url: "{{two}}"
"#,
        &[("one", one.url()), ("two", two.url())],
    )
    .await;
    let client = HttpClient::http1();
    common::wait_reply(
        &proxy,
        &client,
        viaduct_testkit::RequestSpec::get(&proxy.url("web")),
        |r| r.status == 200,
    )
    .await;
    let (no, nt) = split(&proxy, &client, 20, (&one, &two)).await;
    assert!(
        (9..=11).contains(&no),
        "one got {no}, two got {nt}; expected an even split"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualified_name_at_file_references_resolve() {
    let a = EchoBackend::start("a").await.unwrap();
    let proxy = start_routed(
        r#"
    qualified:
      rule: "Host(`q.test`)"
      service: "a@file"
"#,
        &[&a],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "q.test", "/", "a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_router_is_disabled_while_others_serve() {
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let proxy = start_routed(
        r#"
    good:
      rule: "Host(`good.test`)"
      service: a
    bad-rule:
      rule: "Host(`bad.test`) &&"
      service: b
    missing-service:
      rule: "Host(`missing.test`)"
      service: nowhere
    bad-catch-all:
      rule: "PathPrefix(`/`) || Nope(`x`)"
      priority: 1
      service: b
"#,
        &[&a, &b],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "good.test", "/", "a").await;
    assert_eq!(get(&proxy, &client, "bad.test", "/").await.status, 404);
    assert_eq!(get(&proxy, &client, "missing.test", "/").await.status, 404);
    assert_eq!(
        get(&proxy, &client, "other.test", "/").await.status,
        404,
        "the catch-all with an unknown matcher is off"
    );
    assert_eq!(b.hits(), 0);
}

/// Sends `n` requests, each of which must succeed, and counts those each backend received.
async fn split(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    n: usize,
    (one, two): (&EchoBackend, &EchoBackend),
) -> (usize, usize) {
    let before = (one.hits(), two.hits());
    for _ in 0..n {
        assert_eq!(get(proxy, client, "x.test", "/").await.status, 200);
    }
    let counts = (one.hits() - before.0, two.hits() - before.1);
    assert_eq!(counts.0 + counts.1, n);
    counts
}
