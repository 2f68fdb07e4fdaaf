//! `providers.redis` against a real `redis-server`: the first read, live edits through
//! keyspace notifications, bursts, broken values, outages, and polling where `CONFIG` is
//! refused.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod support;

use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::{static_config, DynamicConfig};
use viaduct_kv::RedisProvider;
use viaduct_providers::ProviderMessage;
use viaduct_redis::{RedisClient, RedisSettings};
use viaduct_testkit::RedisServer;

use support::{next, nothing_for, routers, R1};

/// A client of the test's server.
fn client(redis: &RedisServer) -> RedisClient {
    RedisClient::new(RedisSettings::new(vec![redis.endpoint()]))
}

/// The provider on `endpoint`, running; its messages arrive on the receiver. The task ends
/// when the receiver is dropped.
fn run_provider(endpoint: String) -> mpsc::Receiver<ProviderMessage> {
    let options = static_config::RedisProvider {
        endpoints: vec![endpoint],
        ..Default::default()
    };
    let provider = RedisProvider::new(&options).unwrap().with_retry_delays(
        Duration::from_millis(100),
        Duration::from_millis(400),
        Duration::from_millis(200),
    );
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(provider.run(tx));
    rx
}

fn server_url(config: &DynamicConfig, service: &str) -> String {
    let http = config.http.as_ref().unwrap();
    http.services[service]
        .load_balancer
        .as_ref()
        .unwrap()
        .servers[0]
        .url
        .clone()
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn first_read_then_live_edits() {
    let redis = RedisServer::start().await.unwrap();
    redis.set(&R1).await.unwrap();
    redis
        .set(&[("elsewhere/http/routers/x/rule", "broken(")])
        .await
        .unwrap();
    let mut rx = run_provider(redis.endpoint());
    let first = next(&mut rx, "redis").await;
    assert_eq!(routers(&first), ["r1"]);

    redis
        .set(&[
            ("traefik/http/routers/r2/rule", "Host(`b.test`)"),
            ("traefik/http/routers/r2/service", "s"),
        ])
        .await
        .unwrap();
    assert_eq!(routers(&next(&mut rx, "redis").await), ["r1", "r2"]);

    redis
        .set(&[(
            "traefik/http/services/s/loadbalancer/servers/0/url",
            "http://127.0.0.1:2",
        )])
        .await
        .unwrap();
    assert_eq!(
        server_url(&next(&mut rx, "redis").await, "s"),
        "http://127.0.0.1:2"
    );

    redis.del("traefik/http/routers/r2/rule").await.unwrap();
    redis.del("traefik/http/routers/r2/service").await.unwrap();
    let mut config = next(&mut rx, "redis").await;
    // The two deletions may arrive as one burst or two.
    while routers(&config) != ["r1"] {
        config = next(&mut rx, "redis").await;
    }

    // A key outside the root changes nothing.
    redis.set(&[("elsewhere/x", "y")]).await.unwrap();
    nothing_for(&mut rx, Duration::from_millis(500)).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_burst_of_writes_is_one_reread() {
    let redis = RedisServer::start().await.unwrap();
    redis.set(&R1).await.unwrap();
    let mut rx = run_provider(redis.endpoint());
    next(&mut rx, "redis").await;

    let names: Vec<(String, String)> = (0..25)
        .flat_map(|i| {
            [
                (
                    format!("traefik/http/routers/burst{i:02}/rule"),
                    format!("Host(`{i}.test`)"),
                ),
                (
                    format!("traefik/http/routers/burst{i:02}/service"),
                    "s".into(),
                ),
            ]
        })
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    redis.set(&pairs).await.unwrap();
    let config = next(&mut rx, "redis").await;
    assert_eq!(routers(&config).len(), 26);
    nothing_for(&mut rx, Duration::from_millis(800)).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_broken_value_keeps_the_last_good_configuration() {
    let redis = RedisServer::start().await.unwrap();
    redis.set(&R1).await.unwrap();
    let mut rx = run_provider(redis.endpoint());
    next(&mut rx, "redis").await;

    redis
        .set(&[("traefik/http/routers/r1/priority", "high")])
        .await
        .unwrap();
    nothing_for(&mut rx, Duration::from_millis(600)).await;

    redis
        .set(&[("traefik/http/routers/r1/priority", "7")])
        .await
        .unwrap();
    let config = next(&mut rx, "redis").await;
    assert_eq!(config.http.unwrap().routers["r1"].priority, 7);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_down_at_start_then_up_then_restarted() {
    let port = viaduct_testkit::free_port().unwrap();
    let mut rx = run_provider(format!("127.0.0.1:{port}"));
    nothing_for(&mut rx, Duration::from_millis(500)).await;

    let redis = RedisServer::start_on(port, &[]).await.unwrap();
    redis.set(&R1).await.unwrap();
    assert_eq!(routers(&next(&mut rx, "redis").await), ["r1"]);

    // Gone (with its keys: nothing persists), then back with another configuration.
    drop(redis);
    nothing_for(&mut rx, Duration::from_millis(500)).await;
    let redis = RedisServer::start_on(port, &[]).await.unwrap();
    redis
        .set(&[
            ("traefik/http/routers/again/rule", "Host(`c.test`)"),
            ("traefik/http/routers/again/service", "s"),
        ])
        .await
        .unwrap();
    let mut config = next(&mut rx, "redis").await;
    // The reconnection may read before or after the write.
    while routers(&config) != ["again"] {
        config = next(&mut rx, "redis").await;
    }
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn polls_where_config_is_refused() {
    let port = viaduct_testkit::free_port().unwrap();
    let redis = RedisServer::start_on(port, &["--rename-command", "CONFIG", ""])
        .await
        .unwrap();
    redis.set(&R1).await.unwrap();
    let mut rx = run_provider(redis.endpoint());
    assert_eq!(routers(&next(&mut rx, "redis").await), ["r1"]);

    redis
        .set(&[(
            "traefik/http/services/s/loadbalancer/servers/0/url",
            "http://127.0.0.1:9",
        )])
        .await
        .unwrap();
    assert_eq!(
        server_url(&next(&mut rx, "redis").await, "s"),
        "http://127.0.0.1:9"
    );
    // Unchanged polls send nothing.
    nothing_for(&mut rx, Duration::from_millis(600)).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_quiet_subscription_is_kept_alive_with_pings() {
    let redis = RedisServer::start().await.unwrap();
    let client = client(&redis);
    let mut subscription = client
        .psubscribe(&["__keyspace@0__:quiet/*"])
        .await
        .unwrap()
        .with_keepalive(Duration::from_millis(100));
    client
        .call(&["CONFIG", "SET", "notify-keyspace-events", "KA"])
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        // Several keepalive periods of silence (answered PINGs) before the event.
        tokio::time::sleep(Duration::from_millis(450)).await;
        client.call(&["SET", "quiet/k", "v"]).await.unwrap();
    });
    let message = tokio::time::timeout(Duration::from_secs(5), subscription.next_message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.channel, "__keyspace@0__:quiet/k");
    assert_eq!(message.payload, b"set");
    writer.await.unwrap();
}
