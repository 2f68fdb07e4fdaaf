//! `providers.consul`: routes stored as Traefik's KV layout in Consul's KV API, followed live.
//! No Consul binary is available here: `viaduct_testkit::ConsulKv` stands in for its HTTP API
//! (lists and blocking queries in Consul's shapes). The test also runs against Traefik
//! (`VIADUCT_E2E_PROXY=traefik`), whose Consul client reads the stand-in as it reads Consul.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::api::wait_router_enabled;
use common::{get, start_with, static_config_with, wait_backend, TRAEFIK_ENTRY_POINT};
use viaduct_testkit::{ConsulKv, EchoBackend, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_from_consul_keys_follow_edits() {
    let one = EchoBackend::start("one").await.unwrap();
    let two = EchoBackend::start("two").await.unwrap();
    let consul = ConsulKv::start().await.unwrap();
    let (url_one, url_two) = (one.url(), two.url());
    consul.put_all(&[
        ("traefik/http/routers/r1/rule", "Host(`kv.test`)"),
        ("traefik/http/routers/r1/entrypoints/0", "web"),
        ("traefik/http/routers/r1/service", "s1"),
        (
            "traefik/http/services/s1/loadbalancer/servers/0/url",
            &url_one,
        ),
    ]);
    let providers = format!(
        "  consul:\n    endpoints: [\"{}\"]\n    rootKey: traefik\n    token: acl-token\n",
        consul.endpoint()
    );
    let static_yaml = format!(
        "{}api:\n  insecure: true\n",
        static_config_with(TRAEFIK_ENTRY_POINT, &providers)
    );
    let proxy = start_with(&static_yaml, "", &[]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "kv.test", "/", "one").await;
    wait_router_enabled(&proxy, &client, "r1@consul", "consul").await;
    assert!(consul.tokens().iter().any(|t| t == "acl-token"));

    consul.put_all(&[
        (
            "traefik/http/services/s1/loadbalancer/servers/0/url",
            &url_two,
        ),
        ("traefik/http/routers/r2/rule", "Host(`second.kv.test`)"),
        ("traefik/http/routers/r2/service", "s1"),
    ]);
    wait_backend(&proxy, &client, "second.kv.test", "/", "two").await;
    assert_eq!(
        get(&proxy, &client, "kv.test", "/").await.backend(),
        Some("two")
    );
}

/// `viaduct check` refuses bad options and a stored key that does not decode, and only warns
/// when Consul does not answer now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_the_options_and_the_stored_keys() {
    if common::kind().is_traefik() {
        eprintln!("skipped: `check` is Viaduct's own command");
        return;
    }
    let consul = ConsulKv::start().await.unwrap();
    consul.put_all(&[
        ("traefik/http/routers/r/rule", "Host(`a`)"),
        ("traefik/http/routers/r/service", "s"),
        ("traefik/http/routers/r/priority", "high"),
    ]);
    let down = viaduct_testkit::free_port().unwrap();
    let live = format!("[\"{}\"]", consul.endpoint());
    for (options, succeeds, needle) in [
        (
            format!("endpoints: {live}\n    rootKey: \"/\""),
            false,
            "providers.consul.rootKey",
        ),
        (
            format!("endpoints: {live}"),
            false,
            "traefik/http/routers/r/priority",
        ),
        (
            format!("endpoints: [\"127.0.0.1:{down}\"]"),
            true,
            "warning: providers.consul",
        ),
    ] {
        let static_yaml = static_config_with("", &format!("  consul:\n    {options}\n"));
        let (success, logs) = common::run_check(&static_yaml).await;
        assert_eq!(success, succeeds, "{options}\n{logs}");
        assert!(logs.contains(needle), "{needle} not in\n{logs}");
    }
}
