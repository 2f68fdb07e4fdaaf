//! TCP routers over TLS end to end: passthrough (the client sees the backend's certificate),
//! termination (it sees Viaduct's), ALPN routing, HTTP and TCP routers on one entry point,
//! HTTPS routers before TCP ones, TLS to backends, split ClientHellos, and rows of Traefik's TCP
//! rule table.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod tcp_support;

use std::time::Duration;

use common::tls::certificate;
use tcp_support::{
    eventually, eventually_echoed, static_config, tls_exchange, TcpBackend, WEB_ROUTE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_testkit::{EchoBackend, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_termination_alpn_and_http_share_an_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, viaduct_der) = certificate(dir.path(), "term.test", &["term.test"]);
    let passthrough = TcpBackend::tls("tlsbackend", &["backend.test"]).await;
    let mqtt = TcpBackend::tls("mqtt", &["mqtt.test"]).await;
    let plain = TcpBackend::plain("plain").await;
    let http = EchoBackend::start("http").await.unwrap();
    let dynamic = format!(
        r#"{WEB_ROUTE}tcp:
  routers:
    passthrough:
      rule: "HostSNI(`backend.test`)"
      service: passthrough
      tls:
        passthrough: true
    terminated:
      rule: "HostSNI(`term.test`)"
      service: plain
      tls: {{}}
    mqtt:
      rule: "ALPN(`mqtt`)"
      service: mqtt
      tls:
        passthrough: true
  services:
    passthrough:
      loadBalancer:
        servers:
          - address: "{{{{passthrough}}}}"
    plain:
      loadBalancer:
        servers:
          - address: "{{{{plain}}}}"
    mqtt:
      loadBalancer:
        servers:
          - address: "{{{{mqtt}}}}"
tls:
  certificates:
    - certFile: "{{{{cert}}}}"
      keyFile: "{{{{key}}}}"
"#
    );
    let proxy = common::start_with(
        &static_config(&["web"], ""),
        &dynamic,
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
    eventually_echoed("TLS to the verified backend", web, "v", "verified").await;
    eventually_echoed("TLS to the unverified backend", other, "u", "unverified").await;
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
