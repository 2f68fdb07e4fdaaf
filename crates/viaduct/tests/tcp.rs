//! TCP routers end to end: plain relays through ``HostSNI(`*`)`` with half-close, servers that
//! speak first, the TCP middlewares, reloads and health checks. TLS routing is in `tcp_tls.rs`,
//! the PROXY protocol in `proxy_protocol.rs`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod tcp_support;

use std::time::Duration;

use tcp_support::{
    connect_from, eventually, eventually_echoed, exchange, plain_exchange, static_config,
    TcpBackend, IO_TIMEOUT, WEB_ROUTE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_testkit::EchoBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_all_relays_plain_tcp_with_half_close_and_takes_over_http() {
    let echo = TcpBackend::plain("echo").await;
    let http = EchoBackend::start("http").await.unwrap();
    let dynamic = format!(
        r#"{WEB_ROUTE}tcp:
  routers:
    echo:
      rule: "HostSNI(`*`)"
      service: echo
  services:
    echo:
      loadBalancer:
        servers:
          - address: "{{{{echo}}}}"
"#
    );
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        &dynamic,
        &[("echo", echo.addr.to_string()), ("http", http.url())],
    )
    .await;
    let addr = proxy.addr("web");
    // The client half-closes after "ping": the backend sees the end, and its answer after
    // that still comes back.
    let answer = eventually_echoed("the TCP router", addr, "ping", "echo").await;
    assert_eq!(answer, "ping|echo");
    // As in Traefik, a non-TLS catch-all TCP router takes every plain connection, HTTP included.
    let request = b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n";
    let answer = plain_exchange(addr, request).await.unwrap();
    // Any connection, not the last: an attempt of the polling above that timed out on a loaded
    // machine may reach the backend later.
    assert!(echo.received().iter().any(|r| r == request));
    if !proxy.kind().is_traefik() {
        // Traefik sometimes cuts the answer that follows a client's half-close.
        assert_eq!(answer.as_bytes(), [&request[..], b"|echo"].concat());
    }
    assert_eq!(http.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_speaks_first_is_relayed_without_waiting_for_the_client() {
    // A backend that greets first, like SMTP or MySQL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let greeter = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.write_all(b"220 hello\r\n").await;
        }
    });
    let dynamic = r#"
tcp:
  routers:
    smtp:
      rule: "HostSNI(`*`)"
      service: smtp
  services:
    smtp:
      loadBalancer:
        servers:
          - address: "{{smtp}}"
"#;
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        dynamic,
        &[("smtp", backend.to_string())],
    )
    .await;
    let addr = proxy.addr("web");
    let greeting = eventually("the greeting", || async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned()).filter(|g| !g.is_empty())
    })
    .await;
    assert_eq!(greeting, "220 hello\r\n");
    greeter.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_allow_list_and_in_flight_conn() {
    let echo = TcpBackend::plain("echo").await;
    let dynamic = r#"
tcp:
  routers:
    allow:
      entryPoints: [web]
      rule: "HostSNI(`*`)"
      service: echo
      middlewares: [only-two]
    limit:
      entryPoints: [limited]
      rule: "HostSNI(`*`)"
      service: echo
      middlewares: [one-each]
  middlewares:
    only-two:
      ipAllowList:
        sourceRange: ["127.0.0.2/32"]
    one-each:
      inFlightConn:
        amount: 1
  services:
    echo:
      loadBalancer:
        servers:
          - address: "{{echo}}"
"#;
    let proxy = start_with_echo(&["web", "limited"], dynamic, &echo).await;
    let web = proxy.addr("web");
    eventually("the allow-listed router", || async {
        let stream = connect_from("127.0.0.2", web).await.ok()?;
        let answer = exchange(stream, b"in").await.ok()?;
        (answer == "in|echo").then_some(())
    })
    .await;
    let before = echo.connections();
    let refused = exchange(connect_from("127.0.0.1", web).await.unwrap(), b"out").await;
    assert!(refused.map_or(true, |a| a.is_empty()), "not allowed");
    assert_eq!(
        echo.connections(),
        before,
        "a refused client never reaches the backend"
    );

    let limited = proxy.addr("limited");
    let mut first = relayed_connection("the limited router", limited).await;
    let second = plain_exchange(limited, b"b").await;
    assert!(second.map_or(true, |a| a.is_empty()), "over inFlightConn");
    first.shutdown().await.unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).await.unwrap();
    let third = eventually_echoed("the slot to free", limited, "c", "echo").await;
    assert_eq!(third, "c|echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_keep_connections_of_routers_that_remain() {
    let echo = TcpBackend::plain("echo").await;
    let first = r#"
tcp:
  routers:
    kept:
      entryPoints: [web]
      rule: "HostSNI(`*`)"
      service: echo
  services:
    echo:
      loadBalancer:
        servers:
          - address: "{{echo}}"
"#;
    let proxy = start_with_echo(&["web", "other"], first, &echo).await;
    let web = proxy.addr("web");
    let mut open = relayed_connection("the first router", web).await;

    let second = first.replace(
        "  services:",
        "    added:\n      entryPoints: [other]\n      rule: \"HostSNI(`*`)\"\n      service: echo\n  services:",
    );
    proxy.write_dynamic(&second).unwrap();
    let other = proxy.addr("other");
    eventually_echoed("the added router", other, "x", "echo").await;
    open.write_all(b"b").await.unwrap();
    let mut buf = [0u8; 1];
    tokio::time::timeout(IO_TIMEOUT, open.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"b", "the connection survived the reload");

    if proxy.kind().is_traefik() {
        return;
    }
    // Viaduct closes the connections of a removed router after its terminationDelay.
    let third = second.replace(
        "    kept:\n      entryPoints: [web]\n      rule: \"HostSNI(`*`)\"\n      service: echo\n",
        "",
    );
    assert!(!third.contains("kept"));
    proxy.write_dynamic(&third).unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(IO_TIMEOUT, open.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the removed router's connection was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_dead_servers_out() {
    let alive = TcpBackend::plain("alive").await;
    let dead = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let dynamic = r#"
tcp:
  routers:
    pair:
      rule: "HostSNI(`*`)"
      service: pair
  services:
    pair:
      loadBalancer:
        healthCheck:
          interval: 100ms
          timeout: 500ms
        servers:
          - address: "{{alive}}"
          - address: "{{dead}}"
"#;
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        dynamic,
        &[
            ("alive", alive.addr.to_string()),
            ("dead", dead.to_string()),
        ],
    )
    .await;
    let web = proxy.addr("web");
    // Once the dead server is found down, every connection goes to the live one.
    eventually("the dead server to be taken out", || async {
        for i in 0..6 {
            let payload = format!("probe-{i}");
            let _ = plain_exchange(web, payload.as_bytes()).await;
            // Judged by what the live server received: the proxy's own probes reach it too.
            let received = alive.received();
            if !received.iter().any(|bytes| bytes == payload.as_bytes()) {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// A connection to `addr` whose first byte came back from the backend: the router is in place
/// and the connection counts as open (waits while `what` is not).
async fn relayed_connection(what: &str, addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    eventually(what, || async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream.write_all(b"a").await.ok()?;
        let mut buf = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(stream)
    })
    .await
}

/// Starts the proxy with the entry points `names` and `dynamic`, whose `{{echo}}` is `echo`.
async fn start_with_echo(
    names: &[&str],
    dynamic: &str,
    echo: &TcpBackend,
) -> viaduct_testkit::ProxyUnderTest {
    let vars = [("echo", echo.addr.to_string())];
    common::start_with(&static_config(names, ""), dynamic, &vars).await
}
