//! `providers.redis`: routes stored as Traefik's KV layout in a real `redis-server`, followed
//! live (the test passes against both Viaduct and Traefik).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::api::{api_get, body_json, wait_router_enabled};
use common::{get, start_with, static_config_with, wait_backend, TRAEFIK_ENTRY_POINT};
use viaduct_testkit::{EchoBackend, HttpClient, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn routes_from_redis_keys_follow_edits() {
    let one = EchoBackend::start("one").await.unwrap();
    let two = EchoBackend::start("two").await.unwrap();
    let redis = RedisServer::start().await.unwrap();
    let (url_one, url_two) = (one.url(), two.url());
    redis
        .set(&[
            ("traefik/http/routers/r1/rule", "Host(`kv.test`)"),
            ("traefik/http/routers/r1/entrypoints/0", "web"),
            ("traefik/http/routers/r1/service", "s1"),
            (
                "traefik/http/services/s1/loadbalancer/servers/0/url",
                &url_one,
            ),
            (
                "traefik/http/middlewares/tag/headers/customrequestheaders/X-From-Kv",
                "yes",
            ),
        ])
        .await
        .unwrap();
    let providers = format!(
        "  redis:\n    endpoints: [\"127.0.0.1:{}\"]\n    rootKey: traefik\n",
        redis.port()
    );
    let static_yaml = format!(
        "{}api:\n  insecure: true\n",
        static_config_with(TRAEFIK_ENTRY_POINT, &providers)
    );
    let proxy = start_with(&static_yaml, "", &[]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "kv.test", "/", "one").await;

    wait_router_enabled(&proxy, &client, "r1@redis", "redis").await;

    // Live edits: the server changes, a middleware is attached, a second router appears.
    redis
        .set(&[
            (
                "traefik/http/services/s1/loadbalancer/servers/0/url",
                &url_two,
            ),
            ("traefik/http/routers/r1/middlewares/0", "tag"),
            ("traefik/http/routers/r2/rule", "Host(`second.kv.test`)"),
            ("traefik/http/routers/r2/service", "s1"),
        ])
        .await
        .unwrap();
    wait_backend(&proxy, &client, "second.kv.test", "/", "two").await;
    let reply = get(&proxy, &client, "kv.test", "/").await;
    assert_eq!(reply.backend(), Some("two"));
    let echoed = body_json(&reply);
    let headers = echoed["headers"].to_string().to_ascii_lowercase();
    assert!(headers.contains("x-from-kv"), "{echoed}");

    let routers = body_json(&api_get(&proxy, &client, "/api/http/routers").await);
    let names: Vec<&str> = routers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|name| name.ends_with("@redis"))
        .collect();
    assert_eq!(names, ["r1@redis", "r2@redis"]);
}

/// Redis down at start: the other providers' routes serve, and Redis's arrive once it is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn redis_down_at_start_does_not_stop_the_other_providers() {
    let one = EchoBackend::start("one").await.unwrap();
    let two = EchoBackend::start("two").await.unwrap();
    let port = viaduct_testkit::free_port().unwrap();
    let providers = format!(
        "  file:\n    filename: \"{{{{dynamic_file}}}}\"\n    watch: true\n  redis:\n    endpoints: [\"127.0.0.1:{port}\"]\n"
    );
    let dynamic = format!(
        "http:\n  routers:\n    filed:\n      rule: \"Host(`file.test`)\"\n      service: filed\n  services:\n    filed:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        one.url()
    );
    let proxy = start_with(&static_config_with("", &providers), &dynamic, &[]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "file.test", "/", "one").await;

    let redis = RedisServer::start_on(port, &[]).await.unwrap();
    let url_two = two.url();
    redis
        .set(&[
            ("traefik/http/routers/late/rule", "Host(`late.test`)"),
            ("traefik/http/routers/late/service", "late"),
            (
                "traefik/http/services/late/loadbalancer/servers/0/url",
                &url_two,
            ),
        ])
        .await
        .unwrap();
    wait_backend(&proxy, &client, "late.test", "/", "two").await;
    assert_eq!(
        get(&proxy, &client, "file.test", "/").await.backend(),
        Some("one")
    );
}

/// `viaduct check` refuses bad options and a stored key that does not decode, and only warns
/// about a Redis that does not answer now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn check_validates_the_options_and_the_stored_keys() {
    if common::kind().is_traefik() {
        eprintln!("skipped: `check` is Viaduct's own command");
        return;
    }
    let redis = RedisServer::start().await.unwrap();
    redis
        .set(&[
            ("traefik/http/routers/r/rule", "Host(`a`)"),
            ("traefik/http/routers/r/service", "s"),
            ("traefik/http/routers/r/priority", "high"),
        ])
        .await
        .unwrap();
    let down = viaduct_testkit::free_port().unwrap();
    let live = format!("[\"127.0.0.1:{}\"]", redis.port());
    for (options, succeeds, needle) in [
        (
            format!("endpoints: {live}\n    db: -1"),
            false,
            "providers.redis.db",
        ),
        (
            format!("endpoints: {live}"),
            false,
            "traefik/http/routers/r/priority",
        ),
        (
            format!("endpoints: [\"127.0.0.1:{down}\"]"),
            true,
            "warning: providers.redis",
        ),
    ] {
        let static_yaml = static_config_with("", &format!("  redis:\n    {options}\n"));
        let (success, logs) = common::run_check(&static_yaml).await;
        assert_eq!(success, succeeds, "{options}\n{logs}");
        assert!(logs.contains(needle), "{needle} not in\n{logs}");
    }
}
