//! Traffic-shaping and resilience middlewares as a client sees them: rateLimit,
//! inFlightReq, retry, circuitBreaker, compress, buffering, errors.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

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

/// A backend whose answers send their head and a first chunk at once, and finish only when
/// told: a response whose body is still in progress.
struct SlowBodyBackend {
    addr: std::net::SocketAddr,
    finish: std::sync::Arc<tokio::sync::Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl SlowBodyBackend {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let finish = std::sync::Arc::new(tokio::sync::Notify::new());
        let notify = finish.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let notify = notify.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let slow = String::from_utf8_lossy(&head)
                        .to_ascii_lowercase()
                        .contains("x-slow");
                    let start = "HTTP/1.1 200 OK\r\nx-backend: slow\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
                    if stream.write_all(start.as_bytes()).await.is_err() {
                        return;
                    }
                    if slow {
                        notify.notified().await;
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                    let _ = stream.read(&mut buf).await;
                });
            }
        });
        SlowBodyBackend {
            addr,
            finish,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SlowBodyBackend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_req_counts_a_request_until_its_body_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = SlowBodyBackend::start().await;
    let dynamic = r#"
http:
  routers:
    limited:
      rule: "Host(`inflight.test`)"
      service: slow
      middlewares: [one-at-a-time]
  middlewares:
    one-at-a-time:
      inFlightReq:
        amount: 1
        sourceCriterion:
          requestHost: true
  services:
    slow:
      loadBalancer:
        servers:
          - url: "{{slow}}"
"#;
    let proxy = start(dynamic, &[("slow", backend.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "inflight.test", "/", "slow").await;

    // A request whose body is still streaming holds the only slot.
    let mut stream = tokio::net::TcpStream::connect(proxy.addr("web"))
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: inflight.test\r\nx-slow: 1\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("hello") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "the proxy closed: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
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
    while !String::from_utf8_lossy(&seen).ends_with("0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    wait_reply(&proxy, &client, spec(&proxy, "inflight.test", "/"), |r| {
        r.status == 200
    })
    .await;

    // A client that goes away mid-body releases its slot too.
    let mut stream = tokio::net::TcpStream::connect(proxy.addr("web"))
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: inflight.test\r\nx-slow: 1\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert_eq!(get(&proxy, &client, "inflight.test", "/").await.status, 429);
    drop(stream);
    wait_reply(&proxy, &client, spec(&proxy, "inflight.test", "/"), |r| {
        r.status == 200
    })
    .await;
}

/// An address nothing listens on: connecting is refused.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
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
    let before = echo.hits();
    let reply = client
        .send(spec(&proxy, "status.test", "/").header("x-echo-status", "404"))
        .await
        .unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(echo.hits() - before, 1);

    let before = echo.hits();
    let reply = client
        .send(spec(&proxy, "status.test", "/").header("x-echo-status", "503"))
        .await
        .unwrap();
    assert_eq!(reply.status, 503, "the last attempt's answer");
    assert_eq!(
        echo.hits() - before,
        3,
        "status 503 is retried up to attempts"
    );

    let before = echo.hits();
    let reply = client
        .send(
            RequestSpec::new(http::Method::POST, &format!("{}/", proxy.url("web")))
                .header("host", "status.test")
                .header("x-echo-status", "503")
                .body(viaduct_testkit::RequestBody::Bytes("payload".into())),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(
        echo.hits() - before,
        1,
        "a POST is not retried on its status"
    );
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
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "retry.test", "/", "echo").await;

    let before = echo.hits();
    let reply = client
        .send(
            RequestSpec::new(http::Method::POST, &format!("{}/", proxy.url("web")))
                .header("host", "retry.test")
                .header("x-echo-abort", "1")
                .body(viaduct_testkit::RequestBody::Bytes("payload".into())),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 502);
    assert_eq!(
        echo.hits() - before,
        1,
        "a POST the backend received is sent once"
    );

    let before = echo.hits();
    let reply = client
        .send(spec(&proxy, "retry.test", "/").header("x-echo-abort", "1"))
        .await
        .unwrap();
    assert_eq!(reply.status, 502);
    assert_eq!(
        echo.hits() - before,
        1,
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
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "cb.test", "/", "echo").await;
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

/// Decodes `data` with a real command-line decoder (`gzip`, `zstd`, `brotli`).
fn decode_with(tool: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new(tool)
        .args(["-d", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{tool} could not decode the body");
    output.stdout
}

const COMPRESS_CONFIG: &str = r#"
http:
  routers:
    compressed:
      rule: "Host(`compress.test`)"
      service: echo
      middlewares: [compress]
    preferring-br:
      rule: "Host(`br.test`)"
      service: echo
      middlewares: [compress-br]
  middlewares:
    compress:
      compress: {}
    compress-br:
      compress:
        encodings: [br, zstd, gzip]
        minResponseBodyBytes: 200
        excludedContentTypes: ["application/json"]
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;

async fn fetch_encoded(
    proxy: &viaduct_testkit::ProxyUnderTest,
    client: &HttpClient,
    host: &str,
    bytes: u64,
    accept: Option<&str>,
) -> viaduct_testkit::Reply {
    let mut request = spec(proxy, host, "/").header("x-echo-body-bytes", &bytes.to_string());
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    client.send(request).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_negotiates_and_gzip_decodes() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(COMPRESS_CONFIG, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "compress.test", "/", "echo").await;

    let reply = fetch_encoded(&proxy, &client, "compress.test", 100_000, Some("gzip")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    // Go's server may frame a short compressed answer with a length; the original is gone.
    if let Some(length) = reply.header("content-length") {
        assert_eq!(length, reply.body.len().to_string());
    }
    assert!(reply
        .headers
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().eq_ignore_ascii_case("accept-encoding")));
    assert!(reply.body.len() < 100_000);
    let plain = decode_with("gzip", &reply.body);
    assert_eq!(
        viaduct_testkit::Checksum::of(&plain),
        viaduct_testkit::pattern_checksum(100_000)
    );

    // Equal weights: the configured order (gzip first by default); q-values first.
    let reply = fetch_encoded(
        &proxy,
        &client,
        "compress.test",
        5000,
        Some("zstd, br, gzip"),
    )
    .await;
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let reply = fetch_encoded(
        &proxy,
        &client,
        "compress.test",
        5000,
        Some("gzip;q=0.5, br"),
    )
    .await;
    assert_eq!(reply.header("content-encoding"), Some("br"));
    let reply = fetch_encoded(
        &proxy,
        &client,
        "compress.test",
        5000,
        Some("gzip;q=0, deflate"),
    )
    .await;
    assert_eq!(reply.header("content-encoding"), None, "nothing acceptable");
    assert_eq!(reply.body.len(), 5000);

    // Too small, or no Accept-Encoding: as it is.
    let reply = fetch_encoded(&proxy, &client, "compress.test", 1000, Some("gzip")).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("content-length"), Some("1000"));
    let reply = fetch_encoded(&proxy, &client, "compress.test", 5000, None).await;
    assert_eq!(reply.header("content-encoding"), None);

    // Excluded content type (the echo's JSON report).
    let reply = client
        .send(spec(&proxy, "br.test", "/").header("accept-encoding", "br"))
        .await
        .unwrap();
    assert_eq!(reply.header("content-encoding"), None);
    assert!(reply.echo().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs zstd and brotli"]
async fn compress_br_and_zstd_decode_with_real_tools() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(COMPRESS_CONFIG, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "br.test", "/", "echo").await;
    for (accept, tool) in [
        ("br", "brotli"),
        ("zstd", "zstd"),
        ("gzip, zstd, br", "brotli"),
    ] {
        let reply = fetch_encoded(&proxy, &client, "br.test", 300_000, Some(accept)).await;
        let coding = reply.header("content-encoding").unwrap().to_string();
        assert_eq!(
            coding,
            if tool == "brotli" { "br" } else { "zstd" },
            "{accept}"
        );
        let plain = decode_with(tool, &reply.body);
        assert_eq!(
            viaduct_testkit::Checksum::of(&plain),
            viaduct_testkit::pattern_checksum(300_000),
            "{accept}"
        );
    }
    let reply = fetch_encoded(&proxy, &client, "br.test", 300, Some("zstd")).await;
    assert_eq!(
        reply.header("content-encoding"),
        Some("zstd"),
        "minResponseBodyBytes 200"
    );
    assert_eq!(decode_with("zstd", &reply.body).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_streams_what_the_backend_sent_before_it_pauses() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = SlowBodyBackend::start().await;
    let dynamic = r#"
http:
  routers:
    compressed:
      rule: "Host(`stream.test`)"
      service: slow
      middlewares: [compress]
  middlewares:
    compress:
      compress: {}
  services:
    slow:
      loadBalancer:
        servers:
          - url: "{{slow}}"
"#;
    let proxy = start(dynamic, &[("slow", backend.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "stream.test", "/", "slow").await;

    let mut stream = tokio::net::TcpStream::connect(proxy.addr("web"))
        .await
        .unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: stream.test\r\nAccept-Encoding: gzip\r\nx-slow: 1\r\n\r\n",
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // The head and the start of the gzip stream arrive while the backend is still sending.
    while !seen.windows(2).any(|w| w == [0x1f, 0x8b]) {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("compressed bytes before the end of the body")
            .unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    backend.finish.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffering_holds_bodies_whole_and_refuses_big_ones() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"
http:
  routers:
    buffered:
      rule: "Host(`buffer.test`)"
      service: echo
      middlewares: [buffer]
  middlewares:
    buffer:
      buffering:
        maxRequestBodyBytes: 100000
        memRequestBodyBytes: 1000
        maxResponseBodyBytes: 200000
        memResponseBodyBytes: 1000
{SERVICE}"#
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "buffer.test", "/", "echo").await;
    let post = |len: u64| {
        RequestSpec::new(http::Method::POST, &format!("{}/", proxy.url("web")))
            .header("host", "buffer.test")
            .body(viaduct_testkit::RequestBody::Pattern(len))
    };

    // Spilled to disk and sent whole, with its length.
    let reply = client.send(post(50_000)).await.unwrap();
    assert_eq!(reply.status, 200);
    let report = reply.echo().unwrap();
    assert_eq!(report.body_len, 50_000);
    assert_eq!(
        report.body_checksum,
        viaduct_testkit::pattern_checksum(50_000).hex()
    );
    assert_eq!(report.header("content-length"), Some("50000"));
    assert_eq!(report.header("transfer-encoding"), None);

    let hits = echo.hits();
    let reply = client.send(post(150_000)).await.unwrap();
    assert_eq!(reply.status, 413, "over maxRequestBodyBytes");
    assert_eq!(reply.text(), "Request Entity Too Large");
    assert_eq!(echo.hits(), hits, "the backend never saw it");

    let reply = client
        .send(spec(&proxy, "buffer.test", "/").header("x-echo-body-bytes", "150000"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("150000"));
    assert_eq!(
        viaduct_testkit::Checksum::of(&reply.body),
        viaduct_testkit::pattern_checksum(150_000)
    );

    let reply = client
        .send(spec(&proxy, "buffer.test", "/").header("x-echo-body-bytes", "300000"))
        .await
        .unwrap();
    assert_eq!(reply.status, 500, "over maxResponseBodyBytes");
    assert_eq!(reply.text(), "Internal Server Error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_answers_with_the_page_service_under_the_original_status() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let pages = EchoBackend::start("pages").await.unwrap();
    let dynamic = r#"
http:
  routers:
    app:
      rule: "Host(`errors.test`)"
      service: echo
      middlewares: [pages]
  middlewares:
    pages:
      errors:
        status: ["500-599", "404"]
        statusRewrites:
          "503": 502
        service: pages
        query: "/error/{status}?orig={originalStatus}&from={url}"
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
    pages:
      loadBalancer:
        servers:
          - url: "{{pages}}"
"#;
    let proxy = start(dynamic, &[("echo", echo.url()), ("pages", pages.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "errors.test", "/", "echo").await;

    let reply = client
        .send(spec(&proxy, "errors.test", "/ok").header("x-echo-status", "418"))
        .await
        .unwrap();
    assert_eq!(reply.status, 418, "not a watched status");
    assert_eq!(reply.backend(), Some("echo"));

    let reply = client
        .send(spec(&proxy, "errors.test", "/a/b?x=1").header("x-echo-status", "500"))
        .await
        .unwrap();
    assert_eq!(reply.status, 500);
    assert_eq!(reply.backend(), Some("pages"));
    let page = reply.echo().unwrap();
    assert_eq!(page.method, "GET");
    assert_eq!(
        page.uri,
        "/error/500?orig=500&from=http%3A%2F%2Ferrors.test%2Fa%2Fb%3Fx%3D1"
    );
    assert_eq!(page.header("host"), Some("errors.test"));
    assert_eq!(
        page.header("x-echo-status"),
        Some("500"),
        "the client's headers"
    );

    let reply = client
        .send(spec(&proxy, "errors.test", "/down").header("x-echo-status", "503"))
        .await
        .unwrap();
    assert_eq!(reply.status, 502, "statusRewrites");
    let page = reply.echo().unwrap();
    assert_eq!(
        page.uri,
        "/error/502?orig=503&from=http%3A%2F%2Ferrors.test%2Fdown"
    );

    let reply = client
        .send(
            RequestSpec::new(http::Method::POST, &format!("{}/gone", proxy.url("web")))
                .header("host", "errors.test")
                .header("x-echo-status", "404")
                .body(viaduct_testkit::RequestBody::Bytes("payload".into())),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 404);
    let page = reply.echo().unwrap();
    assert_eq!(page.method, "GET", "the page is always fetched with GET");
    assert_eq!(page.body_len, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_converts_calls_and_answers_their_preflight() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = r#"
http:
  routers:
    app:
      rule: "Host(`grpc.test`)"
      service: echo
      middlewares: [grpc-web]
  middlewares:
    grpc-web:
      grpcWeb:
        allowOrigins: ["https://app.test"]
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;
    let proxy = start(dynamic, &[("echo", echo.h2c_url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "grpc.test", "/", "echo").await;
    let url = format!("{}/pkg.Service/Call", proxy.url("web"));

    let hits = echo.hits();
    let preflight = |origin: &str| {
        RequestSpec::new(http::Method::OPTIONS, &url)
            .header("host", "grpc.test")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent",
            )
    };
    let reply = client.send(preflight("https://app.test")).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(reply.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("Content-Type, X-Grpc-Web, X-User-Agent")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));
    let reply = client.send(preflight("https://evil.test")).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(echo.hits(), hits, "preflights are answered by the proxy");

    // A binary call reaches the backend as gRPC over HTTP/2.
    let frame = b"\x00\x00\x00\x00\x03abc".to_vec();
    let call = |content_type: &str, body: Vec<u8>| {
        RequestSpec::new(http::Method::POST, &url)
            .header("host", "grpc.test")
            .header("origin", "https://app.test")
            .header("content-type", content_type)
            .header("x-grpc-web", "1")
            .body(viaduct_testkit::RequestBody::Bytes(body.into()))
    };
    let reply = client
        .send(call("application/grpc-web+proto", frame.clone()))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    let exposed = reply.header("access-control-expose-headers").unwrap();
    assert!(
        exposed.contains("grpc-status") && exposed.contains("X-Backend"),
        "{exposed}"
    );
    let report = reply.echo().unwrap();
    assert_eq!(report.version, "HTTP/2.0");
    assert_eq!(
        report.header("content-type"),
        Some("application/grpc+proto")
    );
    // HTTP/2 may announce the length of the body it sends; never the browser's own.
    assert!(report.header("content-length").is_none_or(|l| l == "8"));
    assert_eq!(
        report.body_checksum,
        viaduct_testkit::Checksum::of(&frame).hex()
    );

    // Traefik breaks the connection when a text-mode call gets a non-gRPC answer.
    if !proxy.kind().is_traefik() {
        let reply = client
            .send(call("application/grpc-web-text", b"AAAAAANhYmM=".to_vec()))
            .await
            .unwrap();
        let report = reply.echo().unwrap();
        assert_eq!(report.header("content-type"), Some("application/grpc"));
        assert_eq!(
            report.body_checksum,
            viaduct_testkit::Checksum::of(&frame).hex(),
            "text mode is decoded"
        );
    }

    // Anything else passes untouched.
    let reply = get(&proxy, &client, "grpc.test", "/plain").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-expose-headers"), None);
}

/// A throwaway `redis-server` on a free loopback port, stopped on drop.
struct RedisServer {
    port: u16,
    child: std::process::Child,
}

impl RedisServer {
    async fn start() -> Self {
        let port = viaduct_testkit::free_port().unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
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

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server"]
async fn rate_limit_in_redis_is_shared_by_instances_even_with_traefik() {
    let mut redis = RedisServer::start().await;
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
        redis.port
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
