//! Malformed and hostile HTTP/1 input sent as raw bytes. Every probe here would be answered 200 by
//! the catch-all route if the proxy accepted it, so each assertion can fail.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{start, start_with, static_config, wait_backend};
use viaduct_testkit::{
    EchoBackend, HttpClient, ProxyUnderTest, RawConnection, RawRecorder, RawResponse,
};

const CATCH_ALL: &str = r#"
http:
  routers:
    all:
      rule: "PathPrefix(`/`)"
      service: backend
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{{backend}}"
"#;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

async fn echo_proxy() -> (EchoBackend, ProxyUnderTest) {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(CATCH_ALL, &[("backend", echo.url())]).await;
    wait_backend(&proxy, &HttpClient::http1(), "app.test", "/", "echo").await;
    (echo, proxy)
}

async fn probe(proxy: &ProxyUnderTest, request: &str) -> RawResponse {
    match RawConnection::exchange(proxy.addr("web"), request.as_bytes(), PROBE_TIMEOUT).await {
        Ok(response) => response,
        Err(e) => panic!("probe {request:?} got no response: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_formed_control_request_is_accepted() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(
        &proxy,
        "POST /ok HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nab",
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(echo.hits(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_content_lengths_are_rejected_with_400() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(
        &proxy,
        "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(echo.hits(), before, "nothing reached the backend");
}

/// `Transfer-Encoding: xchunked`: `chunked` is not the final coding, so the body length cannot be
/// known. RFC 9112 §6.3 requires 400 and closing the connection; Traefik (Go) answers 501.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_encoding_without_final_chunked_is_rejected() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(
        &proxy,
        "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    let expected = if proxy.kind().is_traefik() { 501 } else { 400 };
    assert_eq!(response.status, expected);
    assert_eq!(echo.hits(), before);
}

/// `Transfer-Encoding: gzip, chunked`: framed by chunked, but with a coding the proxy does not
/// implement. Forwarding would strip the header and hand the backend gzip bytes it was not told
/// about, so the request is refused with 501 (RFC 9112 §6.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transfer_coding_is_rejected_with_501() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(
        &proxy,
        "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 501);
    assert_eq!(echo.hits(), before);
}

/// `Content-Length` with `Transfer-Encoding: chunked`: the body is framed as chunked, the length
/// is not forwarded, and nothing after the chunked body may reach the backend inside that request.
/// Viaduct must also close the client connection after answering (RFC 9112 §6.1); Traefik (Go)
/// keeps it open and serves the pipelined request as a second, well-framed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_chunked_is_framed_as_chunked_and_never_smuggled() {
    let recorder = RawRecorder::start("recorder").await.unwrap();
    let proxy = start(CATCH_ALL, &[("backend", recorder.url())]).await;
    wait_backend(
        &proxy,
        &HttpClient::http1(),
        "app.test",
        "/warmup",
        "recorder",
    )
    .await;
    let before = recorder.requests().len();

    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(
        b"POST /first HTTP/1.1\r\nHost: app.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
    )
    .await
    .unwrap();
    let response = conn.read_response(PROBE_TIMEOUT).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let closed = conn.closed_within(Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert!(
        recorder.errors().is_empty(),
        "badly framed forward: {:?}",
        recorder.errors()
    );
    let forwarded: Vec<_> = recorder.requests().into_iter().skip(before).collect();
    let first = &forwarded[0];
    assert_eq!(first.target, "/first");
    assert_eq!(first.body, b"abc");
    assert!(
        first.header_all("content-length").iter().all(|v| *v != "6"),
        "the conflicting length was forwarded"
    );
    assert!(forwarded
        .iter()
        .all(|r| !r.body.windows(8).any(|w| w == b"smuggled")));
    if proxy.kind().is_traefik() {
        assert!(!closed, "Traefik keeps the connection open");
    } else {
        assert!(
            closed,
            "the connection must be closed after an ambiguous request"
        );
        assert_eq!(
            forwarded.len(),
            1,
            "only one request may reach the backend: {forwarded:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_larger_than_max_header_bytes_get_431() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let extra = "    http:\n      maxHeaderBytes: 4096";
    let proxy = start_with(&static_config(extra), CATCH_ALL, &[("backend", echo.url())]).await;
    wait_backend(&proxy, &HttpClient::http1(), "app.test", "/", "echo").await;
    let before = echo.hits();

    // Go allows 4096 bytes of slack over the limit; 32 KiB is over it for any reading.
    let big = "a".repeat(32 * 1024);
    let response = probe(
        &proxy,
        &format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\n\r\n"),
    )
    .await;
    assert_eq!(response.status, 431);
    let small = "a".repeat(1024);
    let response = probe(
        &proxy,
        &format!("GET / HTTP/1.1\r\nHost: app.test\r\nX-Small: {small}\r\n\r\n"),
    )
    .await;
    assert_eq!(response.status, 200, "a header under the limit passes");
    assert_eq!(echo.hits(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_client_is_disconnected_after_read_timeout() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let extra = "    transport:\n      respondingTimeouts:\n        readTimeout: 1s";
    let proxy = start_with(&static_config(extra), CATCH_ALL, &[("backend", echo.url())]).await;
    wait_backend(&proxy, &HttpClient::http1(), "app.test", "/", "echo").await;

    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    let started = Instant::now();
    let trickle =
        b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut disconnected = false;
    for byte in trickle.iter() {
        if conn.send(std::slice::from_ref(byte)).await.is_err()
            || conn.closed_within(Duration::from_millis(200)).await
        {
            disconnected = true;
            break;
        }
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        disconnected,
        "still connected after {elapsed:?} of trickling headers"
    );
    assert!(
        elapsed >= Duration::from_millis(800),
        "closed too early ({elapsed:?}): not a timeout"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "closed only after {elapsed:?} with readTimeout 1s"
    );
}

/// A line ending in a bare LF. RFC 9112 §2.2 lets a recipient accept it; what matters is that the
/// backend receives a well-formed request, which it does because the proxy re-serialises the head
/// with CRLF. Traefik (Go) accepts it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_line_ending_is_normalised() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(&proxy, "GET / HTTP/1.1\r\nHost: app.test\nX-A: b\r\n\r\n").await;
    assert_eq!(response.status, 200);
    assert_eq!(echo.hits(), before + 1);
}

/// A header continued on the next line (obs-fold). Traefik (Go) unfolds it and answers 200;
/// Viaduct rejects it, as RFC 9112 §5.2 allows and smuggling hygiene prefers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_fold_header_is_rejected_with_400() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(
        &proxy,
        "GET / HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n b\r\n\r\n",
    )
    .await;
    if proxy.kind().is_traefik() {
        assert_eq!(response.status, 200);
    } else {
        assert_eq!(response.status, 400);
        assert_eq!(echo.hits(), before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_host_on_http11_is_rejected_with_400() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(&proxy, "GET / HTTP/1.1\r\nX-A: b\r\n\r\n").await;
    assert_eq!(response.status, 400);
    assert_eq!(echo.hits(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_percent_escape_in_path_is_rejected_with_400() {
    let (echo, proxy) = echo_proxy().await;
    let before = echo.hits();
    let response = probe(&proxy, "GET /a%zz HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
    assert_eq!(response.status, 400);
    assert_eq!(echo.hits(), before);
}
