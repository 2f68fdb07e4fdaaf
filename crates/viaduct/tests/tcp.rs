//! TCP routers end to end: plain relays through ``HostSNI(`*`)`` with half-close, TLS
//! passthrough and termination, ALPN routing, HTTP and TCP routers on one entry point, the
//! PROXY protocol both ways, the TCP middlewares, reloads, and rows of Traefik's TCP rule table.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod tcp_support;

use std::time::Duration;

use tcp_support::{
    connect_from, eventually, exchange, plain_exchange, tls_exchange, TcpBackend, IO_TIMEOUT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_testkit::{EchoBackend, EchoReport, HttpClient, RawConnection};

/// Entry points `names` (each on `{{addr:NAME}}`), `extra` YAML appended to every one of them
/// (6-space indent), and the watched file provider.
fn static_config(names: &[&str], extra: &str) -> String {
    let mut yaml = String::from(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nlog:\n  level: DEBUG\nentryPoints:\n",
    );
    for name in names {
        yaml.push_str(&format!(
            "  {name}:\n    address: \"{{{{addr:{name}}}}}\"\n{extra}\n"
        ));
    }
    yaml.push_str(
        "providers:\n  providersThrottleDuration: 100ms\n  file:\n    filename: \"{{dynamic_file}}\"\n    watch: true\n",
    );
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_all_relays_plain_tcp_with_half_close_and_takes_over_http() {
    let echo = TcpBackend::plain("echo").await;
    let http = EchoBackend::start("http").await.unwrap();
    let dynamic = r#"
http:
  routers:
    web:
      rule: "Host(`web.test`)"
      service: http
  services:
    http:
      loadBalancer:
        servers:
          - url: "{{http}}"
tcp:
  routers:
    echo:
      rule: "HostSNI(`*`)"
      service: echo
  services:
    echo:
      loadBalancer:
        servers:
          - address: "{{echo}}"
"#;
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        dynamic,
        &[("echo", echo.addr.to_string()), ("http", http.url())],
    )
    .await;
    let addr = proxy.addr("web");
    // The client half-closes after "ping": the backend sees the end, and its answer after
    // that still comes back.
    let answer = eventually("the TCP router", || async {
        plain_exchange(addr, b"ping")
            .await
            .ok()
            .filter(|a| a == "ping|echo")
    })
    .await;
    assert_eq!(answer, "ping|echo");
    // As in Traefik, a non-TLS catch-all TCP router takes every plain connection, HTTP included.
    let request = b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n";
    let answer = plain_exchange(addr, request).await.unwrap();
    assert_eq!(echo.received().last().unwrap(), request);
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

/// A certificate for `names` written into `dir`: (cert path, key path, DER).
fn certificate(dir: &std::path::Path, names: &[&str]) -> (String, String, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = dir.join(format!("{}.crt", names[0]));
    let key = dir.join(format!("{}.key", names[0]));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        certified.cert.der().to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_termination_alpn_and_http_share_an_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, viaduct_der) = certificate(dir.path(), &["term.test"]);
    let passthrough = TcpBackend::tls("tlsbackend", &["backend.test"]).await;
    let mqtt = TcpBackend::tls("mqtt", &["mqtt.test"]).await;
    let plain = TcpBackend::plain("plain").await;
    let http = EchoBackend::start("http").await.unwrap();
    let dynamic = r#"
http:
  routers:
    web:
      rule: "Host(`web.test`)"
      service: http
  services:
    http:
      loadBalancer:
        servers:
          - url: "{{http}}"
tcp:
  routers:
    passthrough:
      rule: "HostSNI(`backend.test`)"
      service: passthrough
      tls:
        passthrough: true
    terminated:
      rule: "HostSNI(`term.test`)"
      service: plain
      tls: {}
    mqtt:
      rule: "ALPN(`mqtt`)"
      service: mqtt
      tls:
        passthrough: true
  services:
    passthrough:
      loadBalancer:
        servers:
          - address: "{{passthrough}}"
    plain:
      loadBalancer:
        servers:
          - address: "{{plain}}"
    mqtt:
      loadBalancer:
        servers:
          - address: "{{mqtt}}"
tls:
  certificates:
    - certFile: "{{cert}}"
      keyFile: "{{key}}"
"#;
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        dynamic,
        &[
            ("passthrough", passthrough.addr.to_string()),
            ("plain", plain.addr.to_string()),
            ("mqtt", mqtt.addr.to_string()),
            ("http", http.url()),
            ("cert", cert),
            ("key", key),
        ],
    )
    .await;
    let addr = proxy.addr("web");

    // Passthrough: the client sees the backend's own certificate.
    let seen = eventually("the passthrough router", || async {
        tls_exchange(addr, "backend.test", &[], b"hello")
            .await
            .ok()
            .filter(|e| e.answer == "hello|tlsbackend")
    })
    .await;
    assert_eq!(Some(&seen.certificate), passthrough.certificate.as_ref());

    // Termination: Viaduct's certificate, and the backend gets the plain stream.
    let seen = tls_exchange(addr, "term.test", &[], b"hello")
        .await
        .unwrap();
    assert_eq!(seen.certificate, viaduct_der);
    if !proxy.kind().is_traefik() {
        // Traefik loses the answer when the client half-closes a terminated stream (it sends
        // close_notify): Viaduct relays the half-close and the answer still arrives.
        assert_eq!(seen.answer, "hello|plain");
        assert_eq!(plain.received().last().unwrap(), b"hello");
    }

    // ALPN routing: only clients offering mqtt reach the mqtt backend.
    let seen = tls_exchange(addr, "other.test", &["mqtt"], b"m")
        .await
        .unwrap();
    assert_eq!(Some(&seen.certificate), mqtt.certificate.as_ref());
    if !proxy.kind().is_traefik() {
        assert_eq!(seen.answer, "m|mqtt");
    }
    let other = tls_exchange(addr, "other.test", &["h2"], b"m").await;
    assert!(other.map_or(true, |e| Some(&e.certificate) != mqtt.certificate.as_ref()));

    // Plain HTTP on the same entry point still reaches the HTTP router.
    let client = HttpClient::http1();
    let reply = common::get(&proxy, &client, "web.test", "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.backend(), Some("http"));
}

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
    let dynamic = r#"
http:
  routers:
    web:
      rule: "Host(`web.test`)"
      service: http
  services:
    http:
      loadBalancer:
        servers:
          - url: "{{http}}"
"#;
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
    let proxy = common::start_with(
        &static_config(&["web", "limited"], ""),
        dynamic,
        &[("echo", echo.addr.to_string())],
    )
    .await;
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
    let mut first = eventually("the limited router", || async {
        let mut stream = tokio::net::TcpStream::connect(limited).await.ok()?;
        stream.write_all(b"a").await.ok()?;
        let mut buf = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(stream)
    })
    .await;
    let second = plain_exchange(limited, b"b").await;
    assert!(second.map_or(true, |a| a.is_empty()), "over inFlightConn");
    first.shutdown().await.unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).await.unwrap();
    let third = eventually("the slot to free", || async {
        plain_exchange(limited, b"c")
            .await
            .ok()
            .filter(|a| a == "c|echo")
    })
    .await;
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
    let proxy = common::start_with(
        &static_config(&["web", "other"], ""),
        first,
        &[("echo", echo.addr.to_string())],
    )
    .await;
    let web = proxy.addr("web");
    let mut open = eventually("the first router", || async {
        let mut stream = tokio::net::TcpStream::connect(web).await.ok()?;
        stream.write_all(b"a").await.ok()?;
        let mut buf = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(stream)
    })
    .await;

    let second = first.replace(
        "  services:",
        "    added:\n      entryPoints: [other]\n      rule: \"HostSNI(`*`)\"\n      service: echo\n  services:",
    );
    proxy.write_dynamic(&second).unwrap();
    let other = proxy.addr("other");
    eventually("the added router", || async {
        plain_exchange(other, b"x")
            .await
            .ok()
            .filter(|a| a == "x|echo")
    })
    .await;
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

/// One row of §3.5's TCP table: a rule, then (SNI, ALPN offered, expected match).
type Row = (
    &'static str,
    &'static [(&'static str, &'static [&'static str], bool)],
);

const TCP_TABLE: &[Row] = &[
    (
        "HostSNI(`example.com`)",
        &[("example.com", &[], true), ("example.org", &[], false)],
    ),
    (
        "HostSNI(`*`)",
        &[("example.com", &[], true), ("", &[], true)],
    ),
    ("HostSNI(`example.com.`)", &[("example.com", &[], true)]),
    (
        "HostSNI(`*.example.com`)",
        &[
            ("foo.example.com", &[], true),
            ("a.b.example.com", &[], false),
        ],
    ),
    (
        "HostSNIRegexp(`^example\\.(com|org)$`)",
        &[("example.org", &[], true), ("exampleuorg", &[], false)],
    ),
    (
        "ALPN(`h2`)",
        &[
            ("example.com", &["h2"], true),
            ("example.com", &["mqtt"], false),
            ("example.com", &[], false),
        ],
    ),
    (
        "ALPN(`h2c`) && (!ALPN(`h2`) || HostSNI(`example.eu`))",
        &[
            ("example.eu", &["h2c", "mqtt"], true),
            ("example.com", &["h2c", "http/1.1", "h2"], false),
            ("example.com", &["h2c", "http/1.1"], true),
            ("example.com", &["http/1.1", "mqtt"], false),
        ],
    ),
    ("hostsni(`example.com`)", &[("example.com", &[], true)]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_tcp_rule_table() {
    let backend = TcpBackend::tls("row", &["example.com"]).await;
    let names: Vec<String> = (0..TCP_TABLE.len()).map(|i| format!("t{i}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut dynamic = String::from("tcp:\n  routers:\n");
    for (i, (rule, _)) in TCP_TABLE.iter().enumerate() {
        dynamic.push_str(&format!(
            "    r{i}:\n      entryPoints: [t{i}]\n      rule: '{rule}'\n      service: row\n      tls:\n        passthrough: true\n"
        ));
    }
    dynamic.push_str("  services:\n    row:\n      loadBalancer:\n        servers:\n          - address: \"{{row}}\"\n");
    let proxy = common::start_with(
        &static_config(&name_refs, ""),
        &dynamic,
        &[("row", backend.addr.to_string())],
    )
    .await;
    let certificate = backend.certificate.clone().unwrap();
    // The first row's positive case tells when the configuration is in place.
    let first = proxy.addr("t0");
    eventually("the routers", || async {
        tls_exchange(first, "example.com", &[], b"x")
            .await
            .ok()
            .filter(|e| e.certificate == certificate)
    })
    .await;
    for (i, (rule, cases)) in TCP_TABLE.iter().enumerate() {
        let addr = proxy.addr(&format!("t{i}"));
        for (sni, alpn, expected) in *cases {
            let seen = tls_exchange(addr, sni, alpn, b"x").await;
            let seen = seen.ok().filter(|e| e.certificate == certificate);
            let matched = seen.is_some();
            if let (Some(seen), false) = (&seen, proxy.kind().is_traefik()) {
                // Traefik sometimes cuts the end of a half-closed passthrough stream.
                assert_eq!(seen.answer, "x|row", "{rule}");
            }
            assert_eq!(
                matched, *expected,
                "{rule} with SNI {sni:?} and ALPN {alpn:?}"
            );
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_router_for_a_host_wins_over_the_tcp_catch_all() {
    let backend = TcpBackend::tls("catchall", &["any.test"]).await;
    let http = EchoBackend::start("http").await.unwrap();
    let dynamic = r#"
http:
  routers:
    app:
      rule: "Host(`app.test`)"
      service: http
      tls: {}
  services:
    http:
      loadBalancer:
        servers:
          - url: "{{http}}"
tcp:
  routers:
    everything:
      rule: "HostSNI(`*`)"
      service: tls
      tls:
        passthrough: true
  services:
    tls:
      loadBalancer:
        servers:
          - address: "{{tls}}"
"#;
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        dynamic,
        &[("tls", backend.addr.to_string()), ("http", http.url())],
    )
    .await;
    let addr = proxy.addr("web");
    let certificate = backend.certificate.clone().unwrap();
    eventually("the TCP catch-all", || async {
        tls_exchange(addr, "other.test", &[], b"x")
            .await
            .ok()
            .filter(|e| e.certificate == certificate)
    })
    .await;
    // The HTTPS router's host is served by the HTTPS side, with the proxy's certificate.
    let before = backend.connections();
    let seen = tls_exchange(
        addr,
        "app.test",
        &[],
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert_ne!(seen.certificate, certificate);
    assert_eq!(backend.connections(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_backends_through_servers_transports() {
    let verified = TcpBackend::tls("verified", &["backend.internal"]).await;
    let unverified = TcpBackend::tls("unverified", &["whatever"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, verified.certificate_pem.as_ref().unwrap()).unwrap();
    let dynamic = r#"
tcp:
  routers:
    verified:
      entryPoints: [web]
      rule: "HostSNI(`*`)"
      service: verified
    unverified:
      entryPoints: [other]
      rule: "HostSNI(`*`)"
      service: unverified
  services:
    verified:
      loadBalancer:
        serversTransport: ca
        servers:
          - address: "{{verified}}"
            tls: true
    unverified:
      loadBalancer:
        serversTransport: insecure
        servers:
          - address: "{{unverified}}"
            tls: true
  serversTransports:
    ca:
      tls:
        serverName: backend.internal
        rootCAs: ["{{ca}}"]
    insecure:
      tls:
        insecureSkipVerify: true
"#;
    let proxy = common::start_with(
        &static_config(&["web", "other"], ""),
        dynamic,
        &[
            ("verified", verified.addr.to_string()),
            ("unverified", unverified.addr.to_string()),
            ("ca", ca.display().to_string()),
        ],
    )
    .await;
    let web = proxy.addr("web");
    let other = proxy.addr("other");
    eventually("TLS to the verified backend", || async {
        plain_exchange(web, b"v")
            .await
            .ok()
            .filter(|a| a == "v|verified")
    })
    .await;
    eventually("TLS to the unverified backend", || async {
        plain_exchange(other, b"u")
            .await
            .ok()
            .filter(|a| a == "u|unverified")
    })
    .await;
}

/// Forwards connections to `target`, holding back all but the first 5 bytes of the client's
/// first write for a moment: a ClientHello split across segments.
async fn splitting_relay(target: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                upstream.set_nodelay(true).unwrap();
                let mut first = vec![0u8; 4096];
                let n = client.read(&mut first).await.unwrap();
                upstream.write_all(&first[..n.min(5)]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
                upstream.write_all(&first[n.min(5)..n]).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_split_across_segments_is_still_routed() {
    let backend = TcpBackend::tls("split", &["split.test"]).await;
    let dynamic = r#"
tcp:
  routers:
    split:
      rule: "HostSNI(`split.test`)"
      service: split
      tls:
        passthrough: true
  services:
    split:
      loadBalancer:
        servers:
          - address: "{{split}}"
"#;
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        dynamic,
        &[("split", backend.addr.to_string())],
    )
    .await;
    let certificate = backend.certificate.clone().unwrap();
    let direct = proxy.addr("web");
    eventually("the passthrough router", || async {
        tls_exchange(direct, "split.test", &[], b"x")
            .await
            .ok()
            .filter(|e| e.certificate == certificate)
    })
    .await;
    let relay = splitting_relay(direct).await;
    let seen = tls_exchange(relay, "split.test", &[], b"x").await.unwrap();
    assert_eq!(seen.certificate, certificate);
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
