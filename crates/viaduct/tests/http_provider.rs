//! `providers.http`: routes polled from an HTTP endpoint, as Traefik polls them (the test passes
//! against both).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{get, start_with, static_config_with, wait_backend};
use tokio::net::TcpListener;
use viaduct_testkit::{ConfigServer, EchoBackend, HttpClient};

fn routes(host: &str, backend: &str) -> String {
    format!(
        "http:\n  routers:\n    polled:\n      rule: \"Host(`{host}`)\"\n      service: polled\n  services:\n    polled:\n      loadBalancer:\n        servers:\n          - url: \"{backend}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_follow_the_endpoint_and_survive_its_failures() {
    let one = EchoBackend::start("one").await.unwrap();
    let two = EchoBackend::start("two").await.unwrap();
    let server = ConfigServer::start(&routes("a.test", &one.url()), None)
        .await
        .unwrap();
    let endpoint = server.url("/dynamic");
    let providers = format!("  http:\n    endpoint: \"{endpoint}\"\n    pollInterval: 300ms\n");
    let static_yaml = static_config_with("", &providers);
    let proxy = start_with(&static_yaml, "", &[]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "a.test", "/", "one").await;

    // The endpoint fails for a while: the last good routes keep serving.
    server.set(503, "down");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        get(&proxy, &client, "a.test", "/").await.backend(),
        Some("one")
    );

    server.set(200, &routes("b.test", &two.url()));
    wait_backend(&proxy, &client, "b.test", "/", "two").await;
    assert_eq!(get(&proxy, &client, "a.test", "/").await.status, 404);
}

/// `viaduct check` refuses bad options and a bad answer, and only warns about an endpoint that
/// does not answer now (it may where Viaduct runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_the_options_and_the_current_answer() {
    if common::kind().is_traefik() {
        eprintln!("skipped: `check` is Viaduct's own command");
        return;
    }
    let server = ConfigServer::start(
        "http:\n  routers:\n    r:\n      rule: \"Host(`a`)\"\n      service: missing\n",
        None,
    )
    .await
    .unwrap();
    let endpoint = server.url("/dynamic");
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unreachable = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    for (endpoint, succeeds, needle) in [
        ("ftp://x/".to_string(), false, "providers.http.endpoint"),
        (endpoint, false, "missing@http"),
        (unreachable, true, "warning: providers.http"),
    ] {
        let static_yaml =
            static_config_with("", &format!("  http:\n    endpoint: \"{endpoint}\"\n"));
        let (success, logs) = common::run_check(&static_yaml).await;
        assert_eq!(success, succeeds, "{endpoint}\n{logs}");
        assert!(logs.contains(needle), "{needle} not in\n{logs}");
    }
}
