//! The PROXY protocol end to end: v1 and v2 headers sent to backends, read on entry points from
//! trusted senders (the real client reaches HTTP's `X-Real-Ip`/`X-Forwarded-For`), refused from
//! others, and haproxy as a real sender and receiver.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod tcp_support;

use std::time::Duration;

use tcp_support::{
    connect_from, eventually, exchange, static_config, TcpBackend, IO_TIMEOUT, WEB_ROUTE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_testkit::{EchoBackend, EchoReport, RawConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_headers_are_sent_to_backends() {
    let v1 = TcpBackend::plain("v1").await;
    let v2 = TcpBackend::plain("v2").await;
    let dynamic = r#"
tcp:
  routers:
    v1:
      entryPoints: [web]
      rule: "HostSNI(`*`)"
      service: v1
    v2:
      entryPoints: [other]
      rule: "HostSNI(`*`)"
      service: v2
  services:
    v1:
      loadBalancer:
        serversTransport: pp1
        servers:
          - address: "{{v1}}"
    v2:
      loadBalancer:
        serversTransport: pp2
        servers:
          - address: "{{v2}}"
  serversTransports:
    pp1:
      proxyProtocol:
        version: 1
    pp2:
      proxyProtocol:
        version: 2
"#;
    let proxy = common::start_with(
        &static_config(&["web", "other"], ""),
        dynamic,
        &[("v1", v1.addr.to_string()), ("v2", v2.addr.to_string())],
    )
    .await;
    let web = proxy.addr("web");
    let stream = eventually("the v1 router", || async {
        let stream = tokio::net::TcpStream::connect(web).await.ok()?;
        let local = stream.local_addr().ok()?;
        let answer = exchange(stream, b"data").await.ok()?;
        // The backend echoes what it got, PROXY header included.
        answer.ends_with("data|v1").then_some(local)
    })
    .await;
    let expected = format!(
        "PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\ndata",
        stream.port(),
        web.port()
    );
    // The proxy's readiness probe also went through: pick this client's connection.
    let port = format!(" {} ", stream.port());
    let received = v1
        .received()
        .into_iter()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .find(|text| text.contains(&port))
        .unwrap();
    assert_eq!(received, expected);

    let other = proxy.addr("other");
    let client = tokio::net::TcpStream::connect(other).await.unwrap();
    let local = client.local_addr().unwrap();
    assert!(exchange(client, b"data")
        .await
        .unwrap()
        .ends_with("data|v2"));
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
    header.extend_from_slice(&local.port().to_be_bytes());
    header.extend_from_slice(&other.port().to_be_bytes());
    let received = v2
        .received()
        .into_iter()
        .find(|bytes| bytes.starts_with(&header))
        .unwrap();
    assert_eq!(&received[header.len()..], b"data");
}

fn v2_header(source: [u8; 4], source_port: u16, destination_port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&source);
    header.extend_from_slice(&[127, 0, 0, 1]);
    header.extend_from_slice(&source_port.to_be_bytes());
    header.extend_from_slice(&destination_port.to_be_bytes());
    header
}

async fn proxied_get(addr: std::net::SocketAddr, header: &[u8]) -> Option<EchoReport> {
    let request = [header, b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n"].concat();
    let response = RawConnection::exchange(addr, &request, IO_TIMEOUT)
        .await
        .ok()?;
    (response.status == 200)
        .then(|| EchoReport::from_json(&response.body).ok())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_on_entry_points_gives_the_real_client_to_http() {
    let http = EchoBackend::start("http").await.unwrap();
    let static_yaml = format!(
        "{}{}",
        static_config(&["web"], "    proxyProtocol:\n      trustedIPs: [\"127.0.0.1/32\"]"),
        ""
    )
    .replace(
        "providers:",
        "  untrusted:\n    address: \"{{addr:untrusted}}\"\n    proxyProtocol:\n      trustedIPs: [\"10.9.9.9\"]\nproviders:",
    );
    let dynamic = WEB_ROUTE;
    let proxy = common::start_with(&static_yaml, dynamic, &[("http", http.url())]).await;
    let web = proxy.addr("web");
    let v1 = format!("PROXY TCP4 203.0.113.9 127.0.0.1 5555 {}\r\n", web.port());
    let report = eventually("the HTTP router", || proxied_get(web, v1.as_bytes())).await;
    assert_eq!(report.header("x-real-ip"), Some("203.0.113.9"));
    assert_eq!(report.header("x-forwarded-for"), Some("203.0.113.9"));

    let v2 = v2_header([198, 51, 100, 7], 4444, web.port());
    let report = proxied_get(web, &v2).await.unwrap();
    assert_eq!(report.header("x-real-ip"), Some("198.51.100.7"));

    // A header split across segments is waited for (Traefik 3.7 closes such a connection).
    if !proxy.kind().is_traefik() {
        let mut split = RawConnection::connect(web).await.unwrap();
        split.send(&v1.as_bytes()[..9]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        split.send(&v1.as_bytes()[9..]).await.unwrap();
        split
            .send(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            .await
            .unwrap();
        let response = split.read_response(IO_TIMEOUT).await.unwrap();
        let report = EchoReport::from_json(&response.body).unwrap();
        assert_eq!(report.header("x-real-ip"), Some("203.0.113.9"));
    }

    // Connections without a header are still served, with the socket's peer.
    let report = proxied_get(web, b"").await.unwrap();
    assert_eq!(report.header("x-real-ip"), Some("127.0.0.1"));

    let untrusted = proxy.addr("untrusted");
    let report = proxied_get(untrusted, b"").await.unwrap();
    assert_eq!(report.header("x-real-ip"), Some("127.0.0.1"));
    let spoofed = proxied_get(untrusted, v1.as_bytes()).await;
    if !proxy.kind().is_traefik() {
        // Viaduct refuses a header from a sender it does not trust (Traefik ignores the
        // address and serves the request).
        assert!(spoofed.is_none(), "an untrusted PROXY header was accepted");
    } else {
        assert_ne!(spoofed.unwrap().header("x-real-ip"), Some("203.0.113.9"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs haproxy"]
async fn haproxy_sends_and_receives_the_proxy_protocol() {
    let http = EchoBackend::start("http").await.unwrap();
    let haproxy_in = viaduct_testkit::free_port().unwrap();
    let haproxy_out = viaduct_testkit::free_port().unwrap();
    let static_yaml = static_config(
        &["web"],
        "    proxyProtocol:\n      trustedIPs: [\"127.0.0.1\"]",
    )
    .replace(
        "providers:",
        "  out:\n    address: \"{{addr:out}}\"\nproviders:",
    );
    let dynamic = format!(
        r#"
http:
  routers:
    web:
      entryPoints: [web]
      rule: "Host(`web.test`)"
      service: http
  services:
    http:
      loadBalancer:
        servers:
          - url: "{{{{http}}}}"
tcp:
  routers:
    out:
      entryPoints: [out]
      rule: "HostSNI(`*`)"
      service: haproxy
  services:
    haproxy:
      loadBalancer:
        serversTransport: pp
        servers:
          - address: "127.0.0.1:{haproxy_in}"
  serversTransports:
    pp:
      proxyProtocol:
        version: 1
"#
    );
    let proxy = common::start_with(&static_yaml, &dynamic, &[("http", http.url())]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "defaults\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n\
             frontend sender\n  mode tcp\n  bind 127.0.0.1:{haproxy_out}\n  default_backend viaduct\n\
             backend viaduct\n  mode tcp\n  server v {web} send-proxy-v2\n\
             frontend receiver\n  mode http\n  bind 127.0.0.1:{haproxy_in} accept-proxy\n  option forwardfor\n  default_backend echo\n\
             backend echo\n  mode http\n  server e {echo}\n",
            web = proxy.addr("web"),
            echo = http.addr(),
        ),
    )
    .unwrap();
    let mut haproxy = tokio::process::Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n";
    let get_from = |from: &'static str, port: u16| async move {
        let mut stream = connect_from(from, format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .ok()?;
        // No half-close here: an HTTP server takes a client's FIN for a client gone.
        stream.write_all(request).await.ok()?;
        let mut answer = Vec::new();
        tokio::time::timeout(IO_TIMEOUT, stream.read_to_end(&mut answer))
            .await
            .ok()?
            .ok()?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let body = answer.split_once("\r\n\r\n")?.1;
        let start = body.find('{')?;
        let end = body.rfind('}')?;
        EchoReport::from_json(&body.as_bytes()[start..=end]).ok()
    };

    // haproxy as a sender: Viaduct reads its v2 header and reports the real client.
    let report = eventually("haproxy → Viaduct", || get_from("127.0.0.2", haproxy_out)).await;
    assert_eq!(report.header("x-real-ip"), Some("127.0.0.2"));

    // haproxy as a receiver: it reads Viaduct's v1 header and forwards the client it names.
    let report = eventually("Viaduct → haproxy", || {
        get_from("127.0.0.3", proxy.port("out"))
    })
    .await;
    assert_eq!(report.header("x-forwarded-for"), Some("127.0.0.3"));
    haproxy.kill().await.unwrap();
}
