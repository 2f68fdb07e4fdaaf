//! `providers.etcd`: routes stored as Traefik's KV layout in a real etcd, followed live. The
//! test also runs against Traefik (`VIADUCT_E2E_PROXY=traefik`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::api::{api_get, body_json, wait_api, wait_router_enabled};
use common::{get, start_with, static_config_with, wait_backend, TRAEFIK_ENTRY_POINT};
use viaduct_testkit::{EchoBackend, EtcdServer, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd"]
async fn routes_from_etcd_keys_follow_edits() {
    let one = EchoBackend::start("one").await.unwrap();
    let two = EchoBackend::start("two").await.unwrap();
    let etcd = EtcdServer::start().await.unwrap();
    let (url_one, url_two) = (one.url(), two.url());
    etcd.put_all(&[
        ("traefik/http/routers/r1/rule", "Host(`kv.test`)"),
        ("traefik/http/routers/r1/entrypoints/0", "web"),
        ("traefik/http/routers/r1/service", "s1"),
        (
            "traefik/http/services/s1/loadbalancer/servers/0/url",
            &url_one,
        ),
    ])
    .await
    .unwrap();
    let providers = format!(
        "  etcd:\n    endpoints: [\"{}\"]\n    rootKey: traefik\n",
        etcd.endpoint()
    );
    let static_yaml = format!(
        "{}api:\n  insecure: true\n",
        static_config_with(TRAEFIK_ENTRY_POINT, &providers)
    );
    let proxy = start_with(&static_yaml, "", &[]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "kv.test", "/", "one").await;
    wait_router_enabled(&proxy, &client, "r1@etcd", "etcd").await;

    // Live edits: the server changes, a second router appears, then the first goes away.
    etcd.put_all(&[
        (
            "traefik/http/services/s1/loadbalancer/servers/0/url",
            &url_two,
        ),
        ("traefik/http/routers/r2/rule", "Host(`second.kv.test`)"),
        ("traefik/http/routers/r2/service", "s1"),
    ])
    .await
    .unwrap();
    wait_backend(&proxy, &client, "second.kv.test", "/", "two").await;
    assert_eq!(
        get(&proxy, &client, "kv.test", "/").await.backend(),
        Some("two")
    );
    for key in ["rule", "entrypoints/0", "service"] {
        etcd.delete(&format!("traefik/http/routers/r1/{key}"))
            .await
            .unwrap();
    }
    wait_api(
        &proxy,
        &client,
        "r1@etcd gone",
        "/api/http/routers/r1@etcd",
        |reply| {
            if reply.status == 404 {
                Ok(())
            } else {
                Err(format!("status {}", reply.status))
            }
        },
    )
    .await;
    assert_eq!(get(&proxy, &client, "kv.test", "/").await.status, 404);
    let routers = body_json(&api_get(&proxy, &client, "/api/http/routers").await);
    let names: Vec<&str> = routers
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|name| name.ends_with("@etcd"))
        .collect();
    assert_eq!(names, ["r2@etcd"]);
}
