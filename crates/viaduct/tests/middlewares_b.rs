//! Traffic-shaping and resilience middlewares as a client sees them: rateLimit,
//! inFlightReq, retry, circuitBreaker, compress, buffering, errors.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::{get, start, wait_backend, wait_reply};
use viaduct_testkit::{EchoBackend, HttpClient, RequestSpec};

const SERVICE: &str = r#"
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;

fn spec(proxy: &viaduct_testkit::ProxyUnderTest, host: &str, path: &str) -> RequestSpec {
    RequestSpec::get(&format!("{}{path}", proxy.url("web"))).header("host", host)
}

fn rate_limit_config(extra_router: &str) -> String {
    format!(
        r#"
http:
  routers:
    limited:
      rule: "Host(`limited.test`)"
      service: echo
      middlewares: [limit]
{extra_router}
  middlewares:
    limit:
      rateLimit:
        average: 1
        period: 10s
        burst: 2
        sourceCriterion:
          requestHeaderName: X-Client
{SERVICE}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_refuses_beyond_the_burst_per_source_and_survives_reloads() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(&rate_limit_config(""), &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_reply(
        &proxy,
        &client,
        spec(&proxy, "limited.test", "/").header("x-client", "warmup"),
        |r| r.status == 200,
    )
    .await;

    let send = |who: &'static str| {
        let request = spec(&proxy, "limited.test", "/").header("x-client", who);
        let client = &client;
        async move { client.send(request).await.unwrap() }
    };
    assert_eq!(send("a").await.status, 200);
    assert_eq!(send("a").await.status, 200);
    let refused = send("a").await;
    assert_eq!(refused.status, 429, "the burst of 2 is spent");
    assert_eq!(refused.header("retry-after"), Some("10"));
    let retry_in = refused.header("x-retry-in").unwrap();
    assert!(
        retry_in.ends_with('s') && (retry_in.starts_with("9.") || retry_in == "10s"),
        "X-Retry-In {retry_in}"
    );
    assert_eq!(refused.text(), "Too Many Requests");
    assert_eq!(
        send("b").await.status,
        200,
        "another source has its own bucket"
    );

    // A reload that leaves the middleware unchanged keeps its buckets (Traefik starts afresh).
    let extra = r#"    other:
      rule: "Host(`other.test`)"
      service: echo"#;
    proxy.write_dynamic(&rate_limit_config(extra)).unwrap();
    wait_backend(&proxy, &client, "other.test", "/", "echo").await;
    if !proxy.kind().is_traefik() {
        assert_eq!(
            send("a").await.status,
            429,
            "the spent bucket survived the reload"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_average_zero_is_no_limit() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    open:
      rule: "Host(`open.test`)"
      service: echo
      middlewares: [limit]
  middlewares:
    limit:
      rateLimit:
        average: 0
{SERVICE}"#
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "open.test", "/", "echo").await;
    for _ in 0..5 {
        assert_eq!(get(&proxy, &client, "open.test", "/").await.status, 200);
    }
}
