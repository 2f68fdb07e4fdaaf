//! Traffic-shaping and resilience middlewares as a client sees them: rateLimit (local and
//! in Redis), inFlightReq, retry, circuitBreaker.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod support_b;

use std::time::Duration;

use common::{get, start, start_echo, wait_backend, wait_reply};
use support_b::{closed_port_url, post_payload, spec, RawExchange, SlowBodyBackend, SERVICE};
use viaduct_testkit::{EchoBackend, HttpClient, RedisServer, RequestSpec};

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
    let (proxy, client) = start_echo(&dynamic, &echo, "open.test").await;
    for _ in 0..5 {
        assert_eq!(get(&proxy, &client, "open.test", "/").await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_req_counts_a_request_until_its_body_is_sent() {
    let backend = SlowBodyBackend::start().await;
    let one_at_a_time = "      inFlightReq:\n        amount: 1\n        sourceCriterion:\n          requestHost: true";
    let proxy = backend
        .start_proxy("inflight.test", "one-at-a-time", one_at_a_time)
        .await;
    let client = HttpClient::http1();

    // A request whose body is still streaming holds the only slot.
    let slow_request = b"GET / HTTP/1.1\r\nHost: inflight.test\r\nx-slow: 1\r\n\r\n";
    let mut exchange = RawExchange::send(&proxy, slow_request).await;
    exchange
        .read_until("the start of the body", |seen| {
            String::from_utf8_lossy(seen).contains("hello")
        })
        .await;
    let refused = get(&proxy, &client, "inflight.test", "/").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.text(), "max connections reached: 1");
    assert_eq!(
        get(&proxy, &client, "other.inflight.test", "/")
            .await
            .status,
        404,
        "sanity: another host is another router"
    );

    // Once the body is over, the slot is free again.
    backend.finish.notify_one();
    exchange
        .read_until("the end of the body", |seen| {
            String::from_utf8_lossy(seen).ends_with("0\r\n\r\n")
        })
        .await;
    wait_reply(&proxy, &client, spec(&proxy, "inflight.test", "/"), |r| {
        r.status == 200
    })
    .await;

    // A client that goes away mid-body releases its slot too.
    let mut exchange = RawExchange::send(&proxy, slow_request).await;
    exchange
        .read_until("the start of the body", |seen| !seen.is_empty())
        .await;
    assert_eq!(get(&proxy, &client, "inflight.test", "/").await.status, 429);
    drop(exchange);
    wait_reply(&proxy, &client, spec(&proxy, "inflight.test", "/"), |r| {
        r.status == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_sends_again_what_did_not_reach_a_backend() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = r#"
http:
  routers:
    retried:
      rule: "Host(`retry.test`)"
      service: half-down
      middlewares: [retry]
    status:
      rule: "Host(`status.test`)"
      service: echo
      middlewares: [retry-5xx]
  middlewares:
    retry:
      retry:
        attempts: 3
        initialInterval: 10ms
    retry-5xx:
      retry:
        attempts: 3
        status: ["500-599"]
  services:
    half-down:
      loadBalancer:
        servers:
          - url: "{{down}}"
          - url: "{{echo}}"
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;
    let proxy = start(
        dynamic,
        &[("echo", echo.url()), ("down", closed_port_url())],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "retry.test", "/", "echo").await;
    for _ in 0..6 {
        let reply = get(&proxy, &client, "retry.test", "/").await;
        assert_eq!(
            reply.status, 200,
            "a refused connection is retried elsewhere"
        );
    }

    // A request the backend received is not sent again (unless `status` asks).
    let (status, hits) = status_and_hits(
        &client,
        &echo,
        spec(&proxy, "status.test", "/").header("x-echo-status", "404"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(hits, 1);

    let (status, hits) = status_and_hits(
        &client,
        &echo,
        spec(&proxy, "status.test", "/").header("x-echo-status", "503"),
    )
    .await;
    assert_eq!(status, 503, "the last attempt's answer");
    assert_eq!(hits, 3, "status 503 is retried up to attempts");

    let (status, hits) = status_and_hits(
        &client,
        &echo,
        post_payload(&proxy, "status.test").header("x-echo-status", "503"),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(hits, 1, "a POST is not retried on its status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_does_not_resend_a_request_the_backend_dropped() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    retried:
      rule: "Host(`retry.test`)"
      service: echo
      middlewares: [retry]
  middlewares:
    retry:
      retry:
        attempts: 3
{SERVICE}"#
    );
    let (proxy, client) = start_echo(&dynamic, &echo, "retry.test").await;

    let (status, hits) = status_and_hits(
        &client,
        &echo,
        post_payload(&proxy, "retry.test").header("x-echo-abort", "1"),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(hits, 1, "a POST the backend received is sent once");

    let (status, hits) = status_and_hits(
        &client,
        &echo,
        spec(&proxy, "retry.test", "/").header("x-echo-abort", "1"),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(
        hits, 1,
        "what reached the backend is not sent again, even a GET"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_trips_falls_back_and_recovers() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    guarded:
      rule: "Host(`cb.test`)"
      service: echo
      middlewares: [breaker]
    broken:
      rule: "Host(`broken.test`)"
      service: echo
      middlewares: [bad-expression]
    int-ratio:
      rule: "Host(`int-ratio.test`)"
      service: echo
      middlewares: [int-ratio]
  middlewares:
    breaker:
      circuitBreaker:
        expression: "ResponseCodeRatio(500, 600, 0, 600) > 0.5"
        checkPeriod: 50ms
        fallbackDuration: 2s
        recoveryDuration: 1s
        responseCode: 418
    bad-expression:
      circuitBreaker:
        expression: "NetworkErrorRatio() >"
    int-ratio:
      circuitBreaker:
        expression: "NetworkErrorRatio() > 1"
{SERVICE}"#
    );
    let (proxy, client) = start_echo(&dynamic, &echo, "cb.test").await;
    assert_eq!(
        get(&proxy, &client, "broken.test", "/").await.status,
        404,
        "an expression that does not parse disables its routers"
    );
    assert_eq!(
        get(&proxy, &client, "int-ratio.test", "/").await.status,
        404,
        "a ratio compares with a float literal only, as oxy"
    );

    // Failures until the breaker trips (checks run at most every 50ms).
    let failing = spec(&proxy, "cb.test", "/").header("x-echo-status", "500");
    let tripped = wait_reply(&proxy, &client, failing.clone(), |r| r.status == 418).await;
    assert_eq!(tripped.text(), "I'm a teapot");
    let hits = echo.hits();
    let reply = get(&proxy, &client, "cb.test", "/").await;
    assert_eq!(reply.status, 418, "open: the breaker answers");
    assert_eq!(echo.hits(), hits, "nothing reaches the backend while open");

    // After fallbackDuration, a growing share gets through, then all of it.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let started = std::time::Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(5) {
        let reply = get(&proxy, &client, "cb.test", "/").await;
        if reply.status == 200 {
            served += 1;
            if served >= 5 {
                break;
            }
        } else {
            served = 0;
            assert_eq!(reply.status, 418);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served >= 5, "the breaker closed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn rate_limit_in_redis_is_shared_by_instances_even_with_traefik() {
    let mut redis = RedisServer::start().await.unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    limited:
      rule: "Host(`limited.test`)"
      service: echo
      middlewares: [limit]
  middlewares:
    limit:
      rateLimit:
        average: 1
        period: 10s
        burst: 2
        sourceCriterion:
          requestHeaderName: X-Client
        redis:
          endpoints: ["127.0.0.1:{}"]
{SERVICE}"#,
        redis.port()
    );
    let first = start(&dynamic, &[("echo", echo.url())]).await;
    // With the oracle at hand, the second instance is Traefik: both keep buckets alike.
    let second_kind = match viaduct_testkit::ProxyKind::traefik() {
        Some(traefik) if !first.kind().is_traefik() => traefik,
        _ => common::kind(),
    };
    let second = viaduct_testkit::Launch::new(second_kind)
        .static_yaml(&common::static_config(""))
        .dynamic_yaml(&dynamic)
        .var("echo", echo.url())
        .start()
        .await
        .unwrap();
    let client = HttpClient::http1();
    for proxy in [&first, &second] {
        wait_reply(
            proxy,
            &client,
            spec(proxy, "limited.test", "/").header("x-client", "warmup"),
            |r| r.backend() == Some("echo"),
        )
        .await;
    }
    let send = |proxy: &viaduct_testkit::ProxyUnderTest, who: &str| {
        let request = spec(proxy, "limited.test", "/").header("x-client", who);
        let client = &client;
        async move { client.send(request).await.unwrap() }
    };
    assert_eq!(send(&first, "a").await.status, 200);
    assert_eq!(send(&second, "a").await.status, 200);
    let refused = send(&first, "a").await;
    assert_eq!(
        refused.status, 429,
        "the burst of 2 is spent across both instances"
    );
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert_eq!(send(&second, "b").await.status, 200);

    redis.stop();
    let reply = send(&first, "c").await;
    assert_eq!(reply.status, 500, "no Redis, no decision");
}

/// Sends `request`; its status, and how many requests `echo` received meanwhile.
async fn status_and_hits(
    client: &HttpClient,
    echo: &EchoBackend,
    request: RequestSpec,
) -> (u16, usize) {
    let before = echo.hits();
    let reply = client.send(request).await.unwrap();
    (reply.status, echo.hits() - before)
}
