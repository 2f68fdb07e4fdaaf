//! Middlewares that work on bodies and answers, as a client sees them: compress,
//! buffering, errors, grpcWeb.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod support_b;

use common::{echo_service, get, start, start_echo, wait_backend};
use support_b::{decode_with, spec, RawExchange, SlowBodyBackend, SERVICE};
use viaduct_testkit::{EchoBackend, HttpClient, ProxyUnderTest, RequestSpec};

const COMPRESS_CONFIG: &str = concat!(
    r#"
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
"#,
    echo_service!()
);

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
    let (proxy, client) = start_echo(COMPRESS_CONFIG, &echo, "compress.test").await;

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
    let negotiated = [
        ("zstd, br, gzip", Some("gzip")),
        ("gzip;q=0.5, br", Some("br")),
        ("gzip;q=0, deflate", None),
    ];
    for (accept, expected) in negotiated {
        let reply = fetch_encoded(&proxy, &client, "compress.test", 5000, Some(accept)).await;
        assert_eq!(reply.header("content-encoding"), expected, "{accept}");
        if expected.is_none() {
            assert_eq!(reply.body.len(), 5000, "nothing acceptable: as it is");
        }
    }

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
    let (proxy, client) = start_echo(COMPRESS_CONFIG, &echo, "br.test").await;
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
    let backend = SlowBodyBackend::start().await;
    let proxy = backend
        .start_proxy("stream.test", "compress", "      compress: {}")
        .await;

    let mut exchange = RawExchange::send(
        &proxy,
        b"GET / HTTP/1.1\r\nHost: stream.test\r\nAccept-Encoding: gzip\r\nx-slow: 1\r\n\r\n",
    )
    .await;
    // The head and the start of the gzip stream arrive while the backend is still sending.
    exchange
        .read_until("compressed bytes before the end of the body", |seen| {
            seen.windows(2).any(|w| w == [0x1f, 0x8b])
        })
        .await;
    let head = exchange.text().to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    backend.finish.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffering_holds_bodies_whole_and_refuses_big_ones() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let options = "        maxRequestBodyBytes: 100000\n        memRequestBodyBytes: 1000\n        maxResponseBodyBytes: 200000\n        memResponseBodyBytes: 1000";
    let (proxy, client) = start_buffered(&echo, options).await;
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
    let dynamic = concat!(
        r#"
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
"#,
        echo_service!()
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffering_sends_a_request_again_while_retry_expression_holds() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let options = "        memRequestBodyBytes: 1000\n        retryExpression: \"IsNetworkError() && Attempts() < 3\"";
    let (proxy, client) = start_buffered(&echo, options).await;
    let before = echo.received().len();
    let reply = client
        .send(
            RequestSpec::new(http::Method::POST, &format!("{}/", proxy.url("web")))
                .header("host", "buffer.test")
                .header("x-echo-status", "502")
                .body(viaduct_testkit::RequestBody::Pattern(5000)),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 502, "the last attempt's answer");
    let received = echo.received();
    assert_eq!(received.len() - before, 3, "sent three times in all");
    for report in &received[before..] {
        assert_eq!(report.body_len, 5000, "the whole body each time");
    }
    let before = echo.received().len();
    let reply = client
        .send(spec(&proxy, "buffer.test", "/").header("x-echo-status", "500"))
        .await
        .unwrap();
    assert_eq!(reply.status, 500);
    assert_eq!(
        echo.received().len() - before,
        1,
        "a 500 is no network error"
    );
}

/// The proxy with one router for `buffer.test` through `buffering` with `options` (YAML,
/// 8-space indent) to `echo`, once it routes.
async fn start_buffered(echo: &EchoBackend, options: &str) -> (ProxyUnderTest, HttpClient) {
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
{options}
{SERVICE}"#
    );
    start_echo(&dynamic, echo, "buffer.test").await
}
