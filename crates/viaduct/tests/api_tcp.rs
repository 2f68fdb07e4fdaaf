//! TCP and UDP objects in the REST API: routers (passthrough, terminated, broken), services,
//! middlewares and a UDP router on a `/udp` entry point. The JSON is compared with real
//! Traefik's for the same configuration; ports and error wording are normalised.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::api::{api_get, api_static_config, assert_same_json, body_json, wait_api};
use common::{kind, viaduct};
use serde_json::{json, Value};
use viaduct_testkit::{free_port, HttpClient, Launch, ProxyKind, ProxyUnderTest};

const STREAM_ENTRY_POINTS: &str = r#"  db:
    address: "{{addr:db}}"
  dns:
    address: "{{udp}}""#;

const DYNAMIC: &str = r#"
tcp:
  routers:
    plain:
      rule: "HostSNI(`*`)"
      service: db
      entryPoints: [db]
      middlewares: [allow]
    pass:
      rule: "HostSNI(`pass.example`)"
      service: split
      tls:
        passthrough: true
    term:
      rule: "HostSNI(`t.example`)"
      service: db
      priority: 7
      entryPoints: [db]
      tls:
        certResolver: none
        domains:
          - main: t.example
            sans: [u.example]
    broken:
      rule: "HostSNI(`x`"
      service: db
      entryPoints: [db]
    missing:
      rule: "HostSNI(`m.example`)"
      service: nope
      entryPoints: [db]
      tls: {}
    partial:
      rule: "HostSNI(`p.example`)"
      service: db
      entryPoints: [db, ghost]
      tls:
        options: strict
    onudp:
      rule: "HostSNI(`*`)"
      service: db
      entryPoints: [dns]
    guarded:
      rule: "HostSNI(`g.example`)"
      service: db
      entryPoints: [db]
      middlewares: [bad-list]
      tls:
        passthrough: true
  services:
    db:
      loadBalancer:
        servers:
          - address: "127.0.0.1:{{s1}}"
          - address: "127.0.0.1:{{s2}}"
            tls: true
    split:
      weighted:
        services:
          - name: db
            weight: 2
  middlewares:
    allow:
      ipAllowList:
        sourceRange: ["127.0.0.1/32"]
    limit:
      inFlightConn:
        amount: 10
    old:
      ipWhiteList:
        sourceRange: ["10.0.0.0/8"]
    bad-list:
      ipAllowList:
        sourceRange: ["not-an-ip"]
tls:
  options:
    strict:
      minVersion: VersionTLS12
udp:
  routers:
    dns:
      service: dns
  services:
    dns:
      loadBalancer:
        servers:
          - address: "127.0.0.1:{{s3}}"
    wdns:
      weighted:
        services:
          - name: dns
            weight: 1
"#;

/// The servers' ports, shared by both proxies so that their answers name the same addresses:
/// nothing listens there (Traefik reports TCP servers `UP` without dialling them).
fn server_ports() -> [u16; 3] {
    [
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    ]
}

async fn launch(kind: ProxyKind, servers: [u16; 3]) -> ProxyUnderTest {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    drop(udp);
    let [s1, s2, s3] = servers;
    Launch::new(kind)
        .static_yaml(&api_static_config("", STREAM_ENTRY_POINTS))
        .dynamic_yaml(DYNAMIC)
        .var("udp", format!("127.0.0.1:{udp_port}/udp"))
        .var("s1", s1.to_string())
        .var("s2", s2.to_string())
        .var("s3", s3.to_string())
        .start()
        .await
        .unwrap()
}

async fn wait_configured(proxy: &ProxyUnderTest, client: &HttpClient) {
    wait_api(
        proxy,
        client,
        "the API to report the TCP configuration",
        "/api/tcp/services/db@file",
        |reply| {
            let service = (reply.status == 200).then(|| body_json(reply));
            match service {
                Some(s) if s.get("serverStatus").is_some() => Ok(()),
                _ => Err(format!("status {}: {}", reply.status, reply.text())),
            }
        },
    )
    .await;
}

/// Error wording differs between correct answers: only the presence of errors must agree.
/// The HTTP side (checked by `api.rs`) is left out of `/api/rawdata`.
fn normalise(mut value: Value, proxy: &ProxyUnderTest) -> Value {
    fn walk(value: &mut Value, ports: &[(&str, u16)]) {
        match value {
            Value::Object(map) => {
                if map.contains_key("error") {
                    map.insert("error".into(), json!("<errors>"));
                }
                map.values_mut().for_each(|v| walk(v, ports));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, ports)),
            Value::String(s) => {
                for (name, port) in ports {
                    *s = s.replace(&format!("127.0.0.1:{port}"), &format!("<{name}>"));
                }
            }
            _ => {}
        }
    }
    if let Value::Object(map) = &mut value {
        for http in ["routers", "services", "middlewares"] {
            if map.contains_key("tcpRouters") {
                map.remove(http);
            }
        }
    }
    let ports = [
        ("web", proxy.port("web")),
        ("traefik", proxy.port("traefik")),
        ("db", proxy.port("db")),
    ];
    walk(&mut value, &ports);
    value
}

const COMPARED: &[&str] = &[
    "/api/overview",
    "/api/rawdata",
    "/api/tcp/routers",
    "/api/tcp/routers/plain@file",
    "/api/tcp/routers/pass@file",
    "/api/tcp/routers/term@file",
    "/api/tcp/routers/broken@file",
    "/api/tcp/routers/missing@file",
    "/api/tcp/routers/partial@file",
    "/api/tcp/routers/onudp@file",
    "/api/tcp/routers/guarded@file",
    "/api/tcp/middlewares/bad-list@file",
    "/api/tcp/services",
    "/api/tcp/services/db@file",
    "/api/tcp/services/split@file",
    "/api/tcp/middlewares",
    "/api/tcp/middlewares/allow@file",
    "/api/udp/routers",
    "/api/udp/routers/dns@file",
    "/api/udp/services",
    "/api/udp/services/wdns@file",
    "/api/tcp/routers?search=PASS",
    "/api/tcp/routers?status=disabled",
    "/api/tcp/routers?serviceName=db@file",
    "/api/tcp/routers?per_page=2&page=2",
    "/api/tcp/routers?sortBy=priority&direction=desc",
    "/api/tcp/services?status=enabled&per_page=1",
    "/api/udp/routers?provider=file",
];

/// Status, `X-Next-Page`, content type and body of each endpoint, as Traefik answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs traefik"]
async fn tcp_udp_api_json_matches_traefik() {
    let Some(oracle) = ProxyKind::traefik() else {
        panic!("no Traefik binary: set TRAEFIK_BIN or run scripts/test");
    };
    let client = HttpClient::http1();
    let servers = server_ports();
    let ours = launch(viaduct(), servers).await;
    let theirs = launch(oracle, servers).await;
    wait_configured(&ours, &client).await;
    wait_configured(&theirs, &client).await;

    for path in COMPARED {
        assert_same_json((&ours, &theirs), &client, path, normalise).await;
    }

    for path in [
        "/api/tcp/routers/nope@file",
        "/api/tcp/services/nope@file",
        "/api/tcp/middlewares/nope@file",
        "/api/udp/routers/nope@file",
        "/api/udp/services/nope@file",
        "/api/udp/middlewares",
        "/api/tcp/routers?page=9",
        "/api/tcp/routers/",
    ] {
        let mine = api_get(&ours, &client, path).await;
        let reference = api_get(&theirs, &client, path).await;
        assert_eq!(mine.status, reference.status, "{path}: status");
        assert_eq!(mine.text(), reference.text(), "{path}: body");
    }
}

/// The API's TCP and UDP answers, checked on the proxy under test (Viaduct, or Traefik with
/// `VIADUCT_E2E_PROXY=traefik`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_udp_objects_with_status_and_relations() {
    let client = HttpClient::http1();
    let servers = server_ports();
    let proxy = launch(kind(), servers).await;
    wait_configured(&proxy, &client).await;

    let overview = body_json(&api_get(&proxy, &client, "/api/overview").await);
    assert_eq!(
        overview["tcp"],
        json!({
            "routers": {"total": 8, "warnings": 1, "errors": 4},
            "services": {"total": 2, "warnings": 0, "errors": 0},
            "middlewares": {"total": 4, "warnings": 0, "errors": 1},
        })
    );
    assert_eq!(overview["udp"]["routers"]["total"], json!(1));
    assert_eq!(overview["udp"]["services"]["total"], json!(2));

    let pass = body_json(&api_get(&proxy, &client, "/api/tcp/routers/pass@file").await);
    assert_eq!(pass["tls"], json!({"passthrough": true}));
    assert_eq!(pass["entryPoints"], json!(["db", "web"]));
    assert_eq!(pass["service"], json!("split"));
    assert_eq!(pass["priorityStr"], json!("23"));
    let plain = body_json(&api_get(&proxy, &client, "/api/tcp/routers/plain@file").await);
    assert_eq!(plain["priority"], json!(-1));
    assert_eq!(plain["middlewares"], json!(["allow@file"]));
    let broken = body_json(&api_get(&proxy, &client, "/api/tcp/routers/broken@file").await);
    assert_eq!(broken["status"], json!("disabled"));
    assert!(broken["error"].as_array().is_some_and(|e| !e.is_empty()));

    let partial = body_json(&api_get(&proxy, &client, "/api/tcp/routers/partial@file").await);
    assert_eq!(partial["status"], json!("warning"));
    assert_eq!(partial["using"], json!(["db"]));
    assert_eq!(partial["tls"]["options"], json!("strict"));
    let onudp = body_json(&api_get(&proxy, &client, "/api/tcp/routers/onudp@file").await);
    assert!(onudp.get("using").is_none());
    assert_eq!(onudp["priorityStr"], json!("0"));

    let db = body_json(&api_get(&proxy, &client, "/api/tcp/services/db@file").await);
    assert_eq!(db["type"], json!("loadbalancer"));
    assert_eq!(
        db["usedBy"],
        json!([
            "broken@file",
            "guarded@file",
            "onudp@file",
            "partial@file",
            "plain@file",
            "term@file"
        ])
    );
    assert_eq!(
        db["serverStatus"][format!("127.0.0.1:{}", servers[1])],
        json!("UP")
    );
    let middlewares = body_json(&api_get(&proxy, &client, "/api/tcp/middlewares").await);
    let types: Vec<&str> = middlewares
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["ipallowlist", "ipallowlist", "inflightconn", "ipwhitelist"]
    );

    let dns = body_json(&api_get(&proxy, &client, "/api/udp/routers/dns@file").await);
    assert_eq!(dns["using"], json!(["dns"]));
    assert!(dns.get("entryPoints").is_none());
    assert!(dns.get("priorityStr").is_none());
    let raw = body_json(&api_get(&proxy, &client, "/api/rawdata").await);
    for key in [
        "tcpRouters",
        "tcpServices",
        "tcpMiddlewares",
        "udpRouters",
        "udpServices",
    ] {
        assert!(raw[key].is_object(), "rawdata lacks {key}");
    }
    let missing = api_get(&proxy, &client, "/api/udp/services/nope@file").await;
    assert_eq!(missing.status, 404);
}
