//! What the proxy forwards: X-Forwarded-* and X-Real-Ip, hop-by-hop stripping, the Host header,
//! error statuses for broken upstreams, large bodies, WebSocket and HTTP/2 cleartext.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{echoed, get, start, start_echo, start_with, static_config, wait_backend, ONE_ROUTE};
use viaduct_testkit::{
    pattern_checksum, ws_echo_roundtrip, EchoBackend, HttpClient, RawConnection, RequestBody,
    RequestSpec, WsEchoBackend,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_forwarded_headers_are_replaced() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let (proxy, client) = start_echo(ONE_ROUTE, &echo, "app.test").await;

    let spec = RequestSpec::get(&format!("{}/fwd", proxy.url("web")))
        .header("host", "app.test")
        .header("x-forwarded-for", "1.2.3.4")
        .header("x-forwarded-host", "evil.test")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "1")
        .header("x-real-ip", "9.9.9.9");
    let seen = client.send(spec).await.unwrap().echo().unwrap();
    assert_eq!(seen.header_all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header_all("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(seen.header_all("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.header_all("x-forwarded-host"), ["app.test"]);
    // No port in Host on a plain entry point: the scheme's default.
    assert_eq!(seen.header_all("x-forwarded-port"), ["80"]);
    assert_eq!(seen.header_all("x-forwarded-server").len(), 1);
    assert!(!seen.header("x-forwarded-server").unwrap_or("").is_empty());
    assert_eq!(seen.header("host"), Some("app.test"));

    let seen = echoed(&proxy, &client, "app.test:8081", "/").await;
    assert_eq!(
        seen.header_all("x-forwarded-port"),
        ["8081"],
        "port taken from Host"
    );
    assert_eq!(seen.header_all("x-forwarded-host"), ["app.test:8081"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_entry_point_keeps_and_appends_forwarded_headers() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let extra = "    forwardedHeaders:\n      insecure: true";
    let proxy = start_with(&static_config(extra), ONE_ROUTE, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/", "echo").await;

    let spec = RequestSpec::get(&format!("{}/fwd", proxy.url("web")))
        .header("host", "app.test")
        .header("x-forwarded-for", "1.2.3.4")
        .header("x-forwarded-host", "orig.test")
        .header("x-forwarded-proto", "https")
        .header("x-real-ip", "9.9.9.9");
    let seen = client.send(spec).await.unwrap().echo().unwrap();
    assert_eq!(seen.header_all("x-forwarded-for"), ["1.2.3.4, 127.0.0.1"]);
    assert_eq!(seen.header_all("x-forwarded-host"), ["orig.test"]);
    assert_eq!(seen.header_all("x-forwarded-proto"), ["https"]);
    assert_eq!(seen.header_all("x-real-ip"), ["9.9.9.9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_and_connection_named_headers_are_removed() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let (proxy, _) = start_echo(ONE_ROUTE, &echo, "app.test").await;

    let request = "GET /hop HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\n\
                   X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n\
                   Proxy-Authorization: Basic Zm9vOmJhcg==\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n";
    let reply = RawConnection::exchange(
        proxy.addr("web"),
        request.as_bytes(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = viaduct_testkit::EchoReport::from_json(&reply.body).unwrap();
    for gone in [
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(
            seen.header(gone).is_none(),
            "{gone} was forwarded: {:?}",
            seen.headers
        );
    }
    assert_ne!(seen.header("connection"), Some("keep-alive, X-Secret"));
    assert_eq!(seen.header("x-kept"), Some("yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_host_header_true_and_false() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(
        r#"
http:
  routers:
    keep:
      rule: "PathPrefix(`/keep`)"
      service: keep
    replace:
      rule: "PathPrefix(`/replace`)"
      service: replace
  services:
    keep:
      loadBalancer:
        servers:
          - url: "{{echo}}"
    replace:
      loadBalancer:
        passHostHeader: false
        servers:
          - url: "{{echo}}"
"#,
        &[("echo", echo.url())],
    )
    .await;
    let client = HttpClient::http1();
    let kept = wait_backend(&proxy, &client, "app.test", "/keep", "echo")
        .await
        .echo()
        .unwrap();
    assert_eq!(kept.header("host"), Some("app.test"));
    let replaced = echoed(&proxy, &client, "app.test", "/replace").await;
    assert_eq!(
        replaced.header("host"),
        Some(echo.addr().to_string().as_str())
    );
    assert_eq!(replaced.header("x-forwarded-host"), Some("app.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_map_to_502_504_and_503() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(
        r#"
http:
  routers:
    alive:
      rule: "PathPrefix(`/alive`)"
      service: alive
    dead:
      rule: "PathPrefix(`/dead`)"
      service: dead
    slow:
      rule: "PathPrefix(`/slow`)"
      service: slow
    empty:
      rule: "PathPrefix(`/empty`)"
      service: empty
  services:
    alive:
      loadBalancer:
        servers:
          - url: "{{echo}}"
    dead:
      loadBalancer:
        servers:
          - url: "http://{{addr:nobody}}"
    slow:
      loadBalancer:
        serversTransport: impatient
        servers:
          - url: "{{echo}}"
    empty:
      loadBalancer:
        servers: []
  serversTransports:
    impatient:
      forwardingTimeouts:
        responseHeaderTimeout: 500ms
"#,
        &[("echo", echo.url())],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/alive", "echo").await;

    assert_eq!(
        get(&proxy, &client, "app.test", "/dead").await.status,
        502,
        "connection refused"
    );
    let abort =
        RequestSpec::get(&format!("{}/alive", proxy.url("web"))).header("x-echo-abort", "1");
    assert_eq!(
        client.send(abort).await.unwrap().status,
        502,
        "backend closed without answering"
    );
    let slow =
        RequestSpec::get(&format!("{}/slow", proxy.url("web"))).header("x-echo-delay-ms", "3000");
    let started = std::time::Instant::now();
    assert_eq!(client.send(slow).await.unwrap().status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "504 came after {:?}",
        started.elapsed()
    );
    assert_eq!(get(&proxy, &client, "app.test", "/empty").await.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_bodies_stream_through_intact() {
    const SIXTEEN_MIB: u64 = 16 * 1024 * 1024;
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ONE_ROUTE, &[("echo", echo.url())]).await;
    let client = HttpClient::http1().with_timeout(Duration::from_secs(60));
    wait_backend(&proxy, &client, "app.test", "/", "echo").await;

    let upload = RequestSpec::new(http::Method::POST, &format!("{}/upload", proxy.url("web")))
        .body(RequestBody::Pattern(SIXTEEN_MIB));
    let seen = client.send(upload).await.unwrap().echo().unwrap();
    let expected = pattern_checksum(SIXTEEN_MIB);
    assert_eq!(seen.body_len, SIXTEEN_MIB);
    assert_eq!(seen.body_checksum, expected.hex());

    let download = RequestSpec::get(&format!("{}/download", proxy.url("web")))
        .header("x-echo-body-bytes", &SIXTEEN_MIB.to_string());
    let reply = client.send(download).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len() as u64, SIXTEEN_MIB);
    assert_eq!(reply.checksum(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_the_proxy() {
    let ws = WsEchoBackend::start().await.unwrap();
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(
        r#"
http:
  routers:
    ws:
      rule: "PathPrefix(`/ws`)"
      service: ws
    probe:
      rule: "PathPrefix(`/probe`)"
      service: echo
  services:
    ws:
      loadBalancer:
        servers:
          - url: "{{ws}}"
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#,
        &[("ws", ws.url()), ("echo", echo.url())],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/probe", "echo").await;

    let url = format!("ws://127.0.0.1:{}/ws/chat", proxy.port("web"));
    let replies = ws_echo_roundtrip(&url, &["hello", "world"], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(replies, ["hello", "world"]);
    let handshake = ws.handshakes().pop().unwrap();
    let proto: Vec<&str> = handshake
        .iter()
        .filter(|(n, _)| n == "x-forwarded-proto")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(proto, ["ws"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_client_reaches_http1_backend() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ONE_ROUTE, &[("echo", echo.url())]).await;
    let client = HttpClient::h2c();
    let spec = RequestSpec::get(&format!("{}/h2", proxy.url("web")));
    let reply = common::wait_reply(&proxy, &client, spec, |r| r.status == 200).await;
    assert_eq!(reply.version, http::Version::HTTP_2);
    let seen = reply.echo().unwrap();
    assert_eq!(seen.version, "HTTP/1.1");
    assert_eq!(seen.uri, "/h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_client_reaches_h2c_backend() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start(ONE_ROUTE, &[("echo", echo.h2c_url())]).await;
    let client = HttpClient::http1();
    let reply = wait_backend(&proxy, &client, "app.test", "/to-h2c", "echo").await;
    assert_eq!(reply.version, http::Version::HTTP_11);
    let seen = reply.echo().unwrap();
    assert_eq!(seen.version, "HTTP/2.0");
    assert_eq!(seen.uri, "/to-h2c");
}

const TLS_ROUTE: &str = r#"
http:
  routers:
    all:
      rule: "PathPrefix(`/`)"
      service: echo
  services:
    echo:
      loadBalancer:
        serversTransport: {{transport}}
        servers:
          - url: "{{echo}}"
  serversTransports:
    trusted:
      rootCAs: ["{{ca}}"]
    trusted-h1:
      rootCAs: ["{{ca}}"]
      disableHTTP2: true
    insecure:
      insecureSkipVerify: true
"#;

/// HTTPS backends: verified against `rootCAs`, HTTP/2 chosen by ALPN unless `disableHTTP2`,
/// `insecureSkipVerify` accepted, and an untrusted certificate refused with 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_backends_use_the_servers_transport() {
    let echo = EchoBackend::start_tls("tls-echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, echo.ca_pem().unwrap()).unwrap();
    let client = HttpClient::http1();
    for (transport, version) in [
        ("trusted", "HTTP/2.0"),
        ("trusted-h1", "HTTP/1.1"),
        ("insecure", "HTTP/2.0"),
    ] {
        let vars = [
            ("echo", echo.https_url()),
            ("ca", ca.display().to_string()),
            ("transport", transport.to_string()),
        ];
        let proxy = start(TLS_ROUTE, &vars).await;
        let reply = wait_backend(&proxy, &client, "app.test", "/secure", "tls-echo").await;
        let seen = reply.echo().unwrap();
        assert_eq!(seen.version, version, "transport {transport}");
        assert_eq!(seen.uri, "/secure");
    }
    let vars = [
        ("echo", echo.https_url()),
        ("ca", ca.display().to_string()),
        ("transport", "default@internal".to_string()),
    ];
    let proxy = start(TLS_ROUTE, &vars).await;
    let spec = RequestSpec::get(&format!("{}/secure", proxy.url("web"))).header("host", "app.test");
    let reply = common::wait_reply(&proxy, &client, spec, |r| r.status != 404).await;
    assert_eq!(
        reply.status, 502,
        "a certificate nobody trusts must not be accepted"
    );
}
