//! `providers.redis` against a real `redis-server`: the first read, live edits through
//! keyspace notifications, bursts, broken values, outages, and polling where `CONFIG` is
//! refused.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::{static_config, DynamicConfig};
use viaduct_kv::RedisProvider;
use viaduct_providers::ProviderMessage;
use viaduct_redis::{RedisClient, RedisSettings};

/// A throwaway `redis-server` on a loopback port, stopped on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    async fn start() -> Self {
        Self::start_on(viaduct_testkit::free_port().unwrap(), &[]).await
    }

    async fn start_on(port: u16, extra: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        RedisServer { port, child }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn client(&self) -> RedisClient {
        RedisClient::new(RedisSettings::new(vec![self.endpoint()]))
    }

    async fn set(&self, pairs: &[(&str, &str)]) {
        let mut args = vec!["MSET"];
        for (key, value) in pairs {
            args.extend([*key, *value]);
        }
        self.client().call(&args).await.unwrap();
    }

    async fn del(&self, key: &str) {
        self.client().call(&["DEL", key]).await.unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

async fn next(rx: &mut mpsc::Receiver<ProviderMessage>) -> DynamicConfig {
    let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a configuration within 10 s")
        .expect("the provider is running");
    assert_eq!(message.provider, "redis");
    (*message.config).clone()
}

async fn nothing_for(rx: &mut mpsc::Receiver<ProviderMessage>, wait: Duration) {
    if let Ok(Some(message)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected configuration: {:?}", message.config);
    }
}

fn routers(config: &DynamicConfig) -> Vec<String> {
    config
        .http
        .as_ref()
        .map(|http| http.routers.keys().cloned().collect())
        .unwrap_or_default()
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

const R1: [(&str, &str); 3] = [
    ("traefik/http/routers/r1/rule", "Host(`a.test`)"),
    ("traefik/http/routers/r1/service", "s"),
    (
        "traefik/http/services/s/loadbalancer/servers/0/url",
        "http://127.0.0.1:1",
    ),
];

#[tokio::test]
#[ignore = "needs redis-server"]
async fn first_read_then_live_edits() {
    let redis = RedisServer::start().await;
    redis.set(&R1).await;
    redis
        .set(&[("elsewhere/http/routers/x/rule", "broken(")])
        .await;
    let mut rx = run_provider(redis.endpoint());
    let first = next(&mut rx).await;
    assert_eq!(routers(&first), ["r1"]);

    redis
        .set(&[
            ("traefik/http/routers/r2/rule", "Host(`b.test`)"),
            ("traefik/http/routers/r2/service", "s"),
        ])
        .await;
    assert_eq!(routers(&next(&mut rx).await), ["r1", "r2"]);

    redis
        .set(&[(
            "traefik/http/services/s/loadbalancer/servers/0/url",
            "http://127.0.0.1:2",
        )])
        .await;
    assert_eq!(server_url(&next(&mut rx).await, "s"), "http://127.0.0.1:2");

    redis.del("traefik/http/routers/r2/rule").await;
    redis.del("traefik/http/routers/r2/service").await;
    let mut config = next(&mut rx).await;
    // The two deletions may arrive as one burst or two.
    while routers(&config) != ["r1"] {
        config = next(&mut rx).await;
    }

    // A key outside the root changes nothing.
    redis.set(&[("elsewhere/x", "y")]).await;
    nothing_for(&mut rx, Duration::from_millis(500)).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_burst_of_writes_is_one_reread() {
    let redis = RedisServer::start().await;
    redis.set(&R1).await;
    let mut rx = run_provider(redis.endpoint());
    next(&mut rx).await;

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
    redis.set(&pairs).await;
    let config = next(&mut rx).await;
    assert_eq!(routers(&config).len(), 26);
    nothing_for(&mut rx, Duration::from_millis(800)).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_broken_value_keeps_the_last_good_configuration() {
    let redis = RedisServer::start().await;
    redis.set(&R1).await;
    let mut rx = run_provider(redis.endpoint());
    next(&mut rx).await;

    redis
        .set(&[("traefik/http/routers/r1/priority", "high")])
        .await;
    nothing_for(&mut rx, Duration::from_millis(600)).await;

    redis
        .set(&[("traefik/http/routers/r1/priority", "7")])
        .await;
    let config = next(&mut rx).await;
    assert_eq!(config.http.unwrap().routers["r1"].priority, 7);
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn redis_down_at_start_then_up_then_restarted() {
    let port = viaduct_testkit::free_port().unwrap();
    let mut rx = run_provider(format!("127.0.0.1:{port}"));
    nothing_for(&mut rx, Duration::from_millis(500)).await;

    let redis = RedisServer::start_on(port, &[]).await;
    redis.set(&R1).await;
    assert_eq!(routers(&next(&mut rx).await), ["r1"]);

    // Gone (with its keys: nothing persists), then back with another configuration.
    drop(redis);
    nothing_for(&mut rx, Duration::from_millis(500)).await;
    let redis = RedisServer::start_on(port, &[]).await;
    redis
        .set(&[
            ("traefik/http/routers/again/rule", "Host(`c.test`)"),
            ("traefik/http/routers/again/service", "s"),
        ])
        .await;
    let mut config = next(&mut rx).await;
    // The reconnection may read before or after the write.
    while routers(&config) != ["again"] {
        config = next(&mut rx).await;
    }
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn polls_where_config_is_refused() {
    let port = viaduct_testkit::free_port().unwrap();
    let redis = RedisServer::start_on(port, &["--rename-command", "CONFIG", ""]).await;
    redis.set(&R1).await;
    let mut rx = run_provider(redis.endpoint());
    assert_eq!(routers(&next(&mut rx).await), ["r1"]);

    redis
        .set(&[(
            "traefik/http/services/s/loadbalancer/servers/0/url",
            "http://127.0.0.1:9",
        )])
        .await;
    assert_eq!(server_url(&next(&mut rx).await, "s"), "http://127.0.0.1:9");
    // Unchanged polls send nothing.
    nothing_for(&mut rx, Duration::from_millis(600)).await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn a_quiet_subscription_is_kept_alive_with_pings() {
    let redis = RedisServer::start().await;
    let client = redis.client();
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
