//! `providers.consul` against a stand-in for Consul's KV HTTP API (`viaduct_testkit::ConsulKv`:
//! no Consul binary is available on this machine; the stand-in answers list and blocking
//! queries in Consul's shapes): the first read, live edits through blocking queries, the ACL
//! token, broken values, and Consul down at start.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod support;

use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::static_config;
use viaduct_kv::ConsulProvider;
use viaduct_providers::ProviderMessage;
use viaduct_testkit::ConsulKv;

use support::{next, nothing_for, routers, R1};

fn run_provider(options: static_config::ConsulProvider) -> mpsc::Receiver<ProviderMessage> {
    let provider = ConsulProvider::new(&options)
        .unwrap()
        .with_retry_delays(Duration::from_millis(100), Duration::from_millis(400));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(provider.run(tx));
    rx
}

fn options(endpoint: String) -> static_config::ConsulProvider {
    static_config::ConsulProvider {
        endpoints: vec![endpoint],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_then_follows_edits_with_the_token() {
    let consul = ConsulKv::start().await.unwrap();
    consul.put_all(&R1);
    consul.put_all(&[("traefik2/http/routers/x/rule", "Host(`x`)")]);
    let mut rx = run_provider(static_config::ConsulProvider {
        token: "acl-token".into(),
        ..options(consul.endpoint())
    });
    assert_eq!(routers(&next(&mut rx, "consul").await), ["r1"]);
    assert!(consul.tokens().iter().all(|t| t == "acl-token"));
    assert!(!consul.tokens().is_empty());

    consul.put_all(&[
        ("traefik/http/routers/r2/rule", "Host(`b.test`)"),
        ("traefik/http/routers/r2/service", "s"),
    ]);
    assert_eq!(routers(&next(&mut rx, "consul").await), ["r1", "r2"]);
    consul.delete("traefik/http/routers/r2/rule");
    consul.delete("traefik/http/routers/r2/service");
    assert_eq!(routers(&next(&mut rx, "consul").await), ["r1"]);
    // A change outside the root wakes the watch (Consul's index is global) but sends nothing.
    consul.put_all(&[("other/x", "y")]);
    nothing_for(&mut rx, Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_value_keeps_the_last_good_configuration() {
    let consul = ConsulKv::start().await.unwrap();
    consul.put_all(&R1);
    let mut rx = run_provider(options(consul.endpoint()));
    next(&mut rx, "consul").await;
    consul.put_all(&[("traefik/http/routers/r1/priority", "high")]);
    nothing_for(&mut rx, Duration::from_millis(400)).await;
    consul.put_all(&[("traefik/http/routers/r1/priority", "3")]);
    assert_eq!(
        next(&mut rx, "consul").await.http.unwrap().routers["r1"].priority,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_down_is_retried_and_an_empty_store_is_empty() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let consul = ConsulKv::start().await.unwrap();
    // The first endpoint is down: the second answers.
    let mut rx = run_provider(static_config::ConsulProvider {
        endpoints: vec![dead, consul.endpoint()],
        ..Default::default()
    });
    assert!(
        routers(&next(&mut rx, "consul").await).is_empty(),
        "404: nothing stored"
    );
    consul.put_all(&R1);
    assert_eq!(routers(&next(&mut rx, "consul").await), ["r1"]);
}

#[test]
fn bad_options_are_refused_with_their_key() {
    for (options, needle) in [
        (
            static_config::ConsulProvider {
                endpoints: vec![],
                ..Default::default()
            },
            "providers.consul.endpoints",
        ),
        (
            static_config::ConsulProvider {
                root_key: "".into(),
                ..Default::default()
            },
            "providers.consul.rootKey",
        ),
    ] {
        let err = ConsulProvider::new(&options).unwrap_err().to_string();
        assert!(err.starts_with(needle), "{err}");
    }
}
