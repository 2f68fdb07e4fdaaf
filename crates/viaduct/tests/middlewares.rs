//! Middlewares as a user sees them: order, chains, path rewriting, and the isolation of
//! broken middlewares (the routers using them are not served; the rest is).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::ECHO_SERVICE as SERVICE;
use common::{echoed, get, start, wait_backend};
use viaduct_testkit::{EchoBackend, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_run_in_order_and_chains_nest() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    api:
      rule: "Host(`api.test`)"
      service: echo
      middlewares: [strip, add]
    chained:
      rule: "Host(`chain.test`)"
      service: echo
      middlewares: [outer]
  middlewares:
    strip:
      stripPrefix:
        prefixes: ["/api", "/v1"]
    add:
      addPrefix:
        prefix: /backend
    outer:
      chain:
        middlewares: [add, inner]
    inner:
      chain:
        middlewares: [strip]
{SERVICE}"#
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let reply = wait_backend(&proxy, &client, "api.test", "/api/users?id=7", "echo").await;
    let report = reply.echo().unwrap();
    assert_eq!(
        report.uri, "/backend/users?id=7",
        "stripPrefix, then addPrefix"
    );
    assert_eq!(report.header("x-forwarded-prefix"), Some("/api"));

    let report = echoed(&proxy, &client, "api.test", "/other").await;
    assert_eq!(report.uri, "/backend/other", "no prefix to strip");
    assert_eq!(report.header("x-forwarded-prefix"), None);

    // outer = [add, inner = [strip]]: the prefix is added first, so there is nothing to strip.
    let report = echoed(&proxy, &client, "chain.test", "/api/x").await;
    assert_eq!(report.uri, "/backend/api/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_middlewares_disable_only_their_routers() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    good:
      rule: "Host(`good.test`)"
      service: echo
      middlewares: [add]
    bad-option:
      rule: "Host(`bad.test`)"
      service: echo
      middlewares: [empty-prefix]
    cycle:
      rule: "Host(`cycle.test`)"
      service: echo
      middlewares: [ping]
    missing:
      rule: "Host(`missing.test`)"
      service: echo
      middlewares: [nowhere]
  middlewares:
    add:
      addPrefix:
        prefix: /p
    empty-prefix:
      addPrefix:
        prefix: ""
    ping:
      chain:
        middlewares: [pong]
    pong:
      chain:
        middlewares: [ping]
{SERVICE}"#
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let reply = wait_backend(&proxy, &client, "good.test", "/x", "echo").await;
    assert_eq!(reply.echo().unwrap().uri, "/p/x");
    for host in ["bad.test", "cycle.test", "missing.test"] {
        assert_eq!(
            get(&proxy, &client, host, "/x").await.status,
            404,
            "{host}: a router whose middlewares cannot be built is not served"
        );
    }
    if !proxy.kind().is_traefik() {
        let logs = proxy.logs();
        assert!(logs.contains("prefix cannot be empty"), "{logs}");
        assert!(logs.contains("reference cycle"), "{logs}");
    }
}
