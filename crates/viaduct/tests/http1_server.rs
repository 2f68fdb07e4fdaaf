//! The entry points' HTTP/1.1 server as a client sees it on the wire: pipelining, bodies in
//! both framings, `Expect: 100-continue`, unread bodies, HTTP/1.0, and the idle timeout.
//! Each test also runs against real Traefik (`VIADUCT_E2E_PROXY=traefik`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{echo_service, start, start_with, static_config, wait_backend};
use viaduct_testkit::{EchoBackend, EchoReport, HttpClient, RawConnection};

const TIMEOUT: Duration = Duration::from_secs(5);

const ROUTES: &str = concat!(
    r#"
http:
  routers:
    app:
      rule: "Host(`app.test`)"
      service: echo
"#,
    echo_service!()
);

async fn ready(proxy: &viaduct_testkit::ProxyUnderTest) {
    wait_backend(proxy, &HttpClient::http1(), "app.test", "/", "echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ROUTES, &[("echo", echo.url())]).await;
    ready(&proxy).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(
        b"GET /one HTTP/1.1\r\nHost: app.test\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc\
          GET /three HTTP/1.1\r\nHost: app.test\r\n\r\n",
    )
    .await
    .unwrap();
    for (path, body_len) in [("/one", 0), ("/two", 3), ("/three", 0)] {
        let response = conn.read_response(TIMEOUT).await.unwrap();
        assert_eq!(response.status, 200);
        let report = EchoReport::from_json(&response.body).unwrap();
        assert_eq!(report.uri, path);
        assert_eq!(report.body_len, body_len);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_bodies_are_forwarded_whole() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ROUTES, &[("echo", echo.url())]).await;
    ready(&proxy).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(
        b"POST /c HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.send(b"5\r\npedia\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let response = conn.read_response(TIMEOUT).await.unwrap();
    let report = EchoReport::from_json(&response.body).unwrap();
    assert_eq!(report.body_len, 9);
    let after = conn.read_response(TIMEOUT).await.unwrap();
    assert_eq!(EchoReport::from_json(&after.body).unwrap().uri, "/after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_gets_100_before_the_body_is_sent() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ROUTES, &[("echo", echo.url())]).await;
    ready(&proxy).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(
        b"PUT /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = conn.read_response(TIMEOUT).await.unwrap();
    assert_eq!(interim.status, 100, "the client is told to go on");
    conn.send(b"hello").await.unwrap();
    let response = conn.read_response(TIMEOUT).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(EchoReport::from_json(&response.body).unwrap().body_len, 5);
}

/// A request answered without its body being read (here: no router) leaves the connection
/// usable: the unread body is skipped, not taken for the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_does_not_become_the_next_request() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ROUTES, &[("echo", echo.url())]).await;
    ready(&proxy).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(
        b"POST /x HTTP/1.1\r\nHost: nobody.test\r\nContent-Length: 39\r\n\r\n\
          GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n\
          GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n",
    )
    .await
    .unwrap();
    let first = conn.read_response(TIMEOUT).await.unwrap();
    assert_eq!(first.status, 404);
    let next = conn.read_response(TIMEOUT).await.unwrap();
    assert_eq!(EchoReport::from_json(&next.body).unwrap().uri, "/next");
    assert!(echo.received().iter().all(|r| r.uri != "/smuggled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_requests_are_answered_and_closed() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ROUTES, &[("echo", echo.url())]).await;
    ready(&proxy).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(b"GET /old HTTP/1.0\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let response = conn.read_response(TIMEOUT).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(EchoReport::from_json(&response.body).unwrap().uri, "/old");
    assert!(conn.closed_within(TIMEOUT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_idle_timeout() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let static_yaml = static_config(
        "    transport:\n      respondingTimeouts:\n        readTimeout: 0s\n        idleTimeout: 1s",
    );
    let proxy = start_with(&static_yaml, ROUTES, &[("echo", echo.url())]).await;
    ready(&proxy).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(conn.read_response(TIMEOUT).await.unwrap().status, 200);
    let started = std::time::Instant::now();
    assert!(
        conn.closed_within(Duration::from_secs(5)).await,
        "closed when idle"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "not before idleTimeout: {:?}",
        started.elapsed()
    );
}
