//! `providers.etcd` against a real etcd: the first read, live edits through the watch stream,
//! a transaction of many keys as one re-read, broken values, and etcd down at start.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod support;

use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::static_config;
use viaduct_kv::EtcdProvider;
use viaduct_providers::ProviderMessage;
use viaduct_testkit::EtcdServer;

use support::{next, nothing_for, routers, R1};

/// The provider on `endpoint`, running; its messages arrive on the receiver. The task ends
/// when the receiver is dropped.
fn run_provider(endpoint: String) -> mpsc::Receiver<ProviderMessage> {
    let options = static_config::EtcdProvider {
        endpoints: vec![endpoint],
        ..Default::default()
    };
    let provider = EtcdProvider::new(&options)
        .unwrap()
        .with_retry_delays(Duration::from_millis(100), Duration::from_millis(400));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(provider.run(tx));
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd"]
async fn reads_then_follows_edits() {
    let etcd = EtcdServer::start().await.unwrap();
    etcd.put_all(&R1).await.unwrap();
    // Outside the root: not configuration.
    etcd.put("other/http/routers/x/rule", "Host(`x`)")
        .await
        .unwrap();
    let mut rx = run_provider(etcd.endpoint());
    let first = next(&mut rx, "etcd").await;
    assert_eq!(routers(&first), ["r1"]);
    assert_eq!(
        first.http.as_ref().unwrap().routers["r1"].rule,
        "Host(`a.test`)"
    );

    etcd.put_all(&[
        ("traefik/http/routers/r2/rule", "Host(`b.test`)"),
        ("traefik/http/routers/r2/service", "s"),
    ])
    .await
    .unwrap();
    assert_eq!(routers(&next(&mut rx, "etcd").await), ["r1", "r2"]);

    etcd.delete("traefik/http/routers/r2/rule").await.unwrap();
    etcd.delete("traefik/http/routers/r2/service")
        .await
        .unwrap();
    assert_eq!(routers(&next(&mut rx, "etcd").await), ["r1"]);
    // An edit outside the root changes nothing.
    etcd.put("other/http/routers/y/rule", "Host(`y`)")
        .await
        .unwrap();
    nothing_for(&mut rx, Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd"]
async fn many_keys_in_one_transaction_give_one_configuration() {
    let etcd = EtcdServer::start().await.unwrap();
    etcd.put_all(&R1).await.unwrap();
    let mut rx = run_provider(etcd.endpoint());
    next(&mut rx, "etcd").await;
    let pairs: Vec<(String, String)> = (0..50)
        .flat_map(|i| {
            [
                (
                    format!("traefik/http/routers/m{i}/rule"),
                    format!("Host(`m{i}.test`)"),
                ),
                (
                    format!("traefik/http/routers/m{i}/service"),
                    "s".to_string(),
                ),
            ]
        })
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    etcd.put_all(&refs).await.unwrap();
    assert_eq!(routers(&next(&mut rx, "etcd").await).len(), 51);
    nothing_for(&mut rx, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd"]
async fn a_broken_value_keeps_the_last_good_configuration() {
    let etcd = EtcdServer::start().await.unwrap();
    etcd.put_all(&R1).await.unwrap();
    let mut rx = run_provider(etcd.endpoint());
    next(&mut rx, "etcd").await;
    etcd.put("traefik/http/routers/r1/priority", "high")
        .await
        .unwrap();
    nothing_for(&mut rx, Duration::from_millis(400)).await;
    etcd.put("traefik/http/routers/r1/priority", "7")
        .await
        .unwrap();
    let fixed = next(&mut rx, "etcd").await;
    assert_eq!(fixed.http.as_ref().unwrap().routers["r1"].priority, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs etcd"]
async fn etcd_down_at_start_is_retried() {
    let port = viaduct_testkit::free_port().unwrap();
    let mut rx = run_provider(format!("127.0.0.1:{port}"));
    nothing_for(&mut rx, Duration::from_millis(300)).await;
    let etcd = EtcdServer::start_on(port).await.unwrap();
    etcd.put_all(&R1).await.unwrap();
    // The provider may read the empty store first, then the keys.
    let mut config = next(&mut rx, "etcd").await;
    if routers(&config).is_empty() {
        config = next(&mut rx, "etcd").await;
    }
    assert_eq!(routers(&config), ["r1"]);
}

#[test]
fn bad_options_are_refused_with_their_key() {
    for (options, needle) in [
        (
            static_config::EtcdProvider {
                endpoints: vec![],
                ..Default::default()
            },
            "providers.etcd.endpoints",
        ),
        (
            static_config::EtcdProvider {
                endpoints: vec!["no-port".into()],
                ..Default::default()
            },
            "providers.etcd.endpoints",
        ),
        (
            static_config::EtcdProvider {
                root_key: "/".into(),
                ..Default::default()
            },
            "providers.etcd.rootKey",
        ),
    ] {
        let err = EtcdProvider::new(&options).unwrap_err().to_string();
        assert!(err.starts_with(needle), "{err}");
    }
}
