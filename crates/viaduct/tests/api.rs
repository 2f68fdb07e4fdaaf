//! The REST API (`api.insecure` on the `traefik` entry point, or `api@internal` behind a user
//! router) and the dashboard's files. The JSON is compared with real Traefik's for the same
//! configuration; values that legitimately differ (ports, versions, error wording) are
//! normalised.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::api::{api_get, api_static_config, assert_same_json, body_json, wait_api};
use common::{kind, viaduct};
use serde_json::{json, Value};
use viaduct_testkit::{free_port, EchoBackend, HttpClient, Launch, ProxyKind, ProxyUnderTest};

const LEGACY_ENTRY_POINT: &str = r#"  legacy:
    address: "{{addr:legacy}}"
    http:
      redirections:
        entryPoint:
          to: web
          scheme: http"#;

const DYNAMIC: &str = r#"
http:
  routers:
    app:
      rule: "Host(`app.example`)"
      service: app
      middlewares: [auth, strip]
      entryPoints: [web]
    broken:
      rule: "Host(`x`"
      service: app
    missing:
      rule: "Path(`/m`)"
      service: nope
      entryPoints: [web]
    secure:
      rule: "Host(`s.example`)"
      service: app
      tls: {}
    split:
      rule: "Host(`split.example`)"
      service: split
      priority: 42
    partial:
      rule: "Path(`/partial`)"
      service: app
      entryPoints: [web, ghost]
    guarded:
      rule: "Path(`/guarded`)"
      service: app
      middlewares: [bad-list]
      entryPoints: [web]
    empty:
      rule: "Path(`/empty`)"
      service: hollow
      entryPoints: [web]
  services:
    app:
      loadBalancer:
        servers:
          - url: "{{a}}"
          - url: "{{b}}"
    checked:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{{dead}}"
        healthCheck:
          path: /health
          interval: 200ms
    hollow: {}
    split:
      weighted:
        services:
          - name: app
            weight: 3
          - name: checked
            weight: 1
  middlewares:
    auth:
      basicAuth:
        users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
    strip:
      stripPrefix:
        prefixes: ["/api"]
    bad-list:
      ipAllowList:
        sourceRange: ["not-an-ip"]
"#;

struct Backends {
    a: EchoBackend,
    b: EchoBackend,
    dead: u16,
}

async fn backends() -> Backends {
    Backends {
        a: EchoBackend::start("a").await.unwrap(),
        b: EchoBackend::start("b").await.unwrap(),
        dead: free_port().unwrap(),
    }
}

async fn launch(kind: ProxyKind, backends: &Backends) -> ProxyUnderTest {
    Launch::new(kind)
        .static_yaml(&api_static_config("", LEGACY_ENTRY_POINT))
        .dynamic_yaml(DYNAMIC)
        .var("a", backends.a.url())
        .var("b", backends.b.url())
        .var("dead", backends.dead.to_string())
        .start()
        .await
        .unwrap()
}

/// Waits until the file provider's objects are in the API and the health check has marked
/// the dead server down.
async fn wait_configured(proxy: &ProxyUnderTest, client: &HttpClient) {
    wait_api(
        proxy,
        client,
        "the API to report the configuration",
        "/api/http/services/checked@file",
        |reply| {
            if reply.status != 200 {
                return Err(format!("status {}", reply.status));
            }
            let service = body_json(reply);
            let down = service["serverStatus"]
                .as_object()
                .is_some_and(|s| s.values().all(|v| v == "DOWN"));
            if down {
                Ok(())
            } else {
                Err(format!("serverStatus {}", service["serverStatus"]))
            }
        },
    )
    .await;
}

/// What may differ between two correct answers: the listening ports, and the wording of
/// error messages (only their presence must agree).
fn normalise(mut value: Value, proxy: &ProxyUnderTest) -> Value {
    let ports = [
        ("web", proxy.port("web")),
        ("traefik", proxy.port("traefik")),
        ("legacy", proxy.port("legacy")),
    ];
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
                    if *s == port.to_string() {
                        *s = format!("<port:{name}>");
                    }
                }
            }
            _ => {}
        }
    }
    walk(&mut value, &ports);
    value
}

const COMPARED: &[&str] = &[
    "/api/overview",
    "/api/entrypoints",
    "/api/entrypoints/web",
    "/api/http/routers",
    "/api/http/routers/app@file",
    "/api/http/routers/split@file",
    "/api/http/routers/partial@file",
    "/api/http/routers/guarded@file",
    "/api/http/routers/empty@file",
    "/api/http/middlewares/bad-list@file",
    "/api/http/services/hollow@file",
    "/api/http/routers/legacy-to-web@internal",
    "/api/http/middlewares/redirect-legacy-to-web@internal",
    "/api/http/services/noop@internal",
    "/api/http/services",
    "/api/http/services/app@file",
    "/api/http/services/checked@file",
    "/api/http/services/split@file",
    "/api/http/middlewares",
    "/api/http/middlewares/auth@file",
    "/api/rawdata",
    "/api/tcp/routers",
    "/api/tcp/services",
    "/api/tcp/middlewares",
    "/api/udp/routers",
    "/api/udp/services",
    "/api/http/routers?search=APP",
    "/api/http/routers?status=disabled",
    "/api/http/routers?serviceName=app@file",
    "/api/http/routers?middlewareName=auth@file",
    "/api/http/routers?per_page=2&page=2",
    "/api/http/routers?sortBy=priority&direction=desc",
    "/api/http/services?status=enabled&per_page=3",
];

/// Status, `X-Next-Page`, content type and body of each endpoint, as Traefik answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs traefik"]
async fn api_json_matches_traefik() {
    let Some(oracle) = ProxyKind::traefik() else {
        panic!("no Traefik binary: set TRAEFIK_BIN or run scripts/test");
    };
    let backends = backends().await;
    let client = HttpClient::http1();
    let ours = launch(viaduct(), &backends).await;
    let theirs = launch(oracle, &backends).await;
    wait_configured(&ours, &client).await;
    wait_configured(&theirs, &client).await;

    for path in COMPARED {
        let (mine, reference) = assert_same_json((&ours, &theirs), &client, path, normalise).await;
        assert_eq!(
            mine.header("content-type"),
            reference.header("content-type"),
            "{path}: Content-Type"
        );
    }

    // Errors: same status and body (Go's http.Error: JSON served as text/plain).
    for path in [
        "/api/http/routers/nope@file",
        "/api/http/services/nope@file",
        "/api/http/middlewares/nope@file",
        "/api/entrypoints/nope",
        "/api/http/routers?page=0",
        "/api/http/routers?per_page=x",
        "/api/http/routers?per_page=2&page=9",
        "/api/nothing-here",
        "/api/http/routers/",
        "/api/entrypoints/",
    ] {
        let mine = api_get(&ours, &client, path).await;
        let reference = api_get(&theirs, &client, path).await;
        assert_eq!(mine.status, reference.status, "{path}: status");
        assert_eq!(mine.text(), reference.text(), "{path}: body");
        assert_eq!(
            mine.header("content-type"),
            reference.header("content-type"),
            "{path}"
        );
    }

    // Version: the same keys (the values name each product).
    let mine = body_json(&api_get(&ours, &client, "/api/version").await);
    let reference = body_json(&api_get(&theirs, &client, "/api/version").await);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&mine), keys(&reference));
}

/// The API's own behaviour, checked on the proxy under test (Viaduct, or Traefik with
/// `VIADUCT_E2E_PROXY=traefik`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reports_status_relations_and_pages() {
    let backends = backends().await;
    let client = HttpClient::http1();
    let proxy = launch(kind(), &backends).await;
    wait_configured(&proxy, &client).await;

    let routers = body_json(&api_get(&proxy, &client, "/api/http/routers").await);
    let names: Vec<&str> = routers
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "api@internal",
            "app@file",
            "broken@file",
            "dashboard@internal",
            "empty@file",
            "guarded@file",
            "legacy-to-web@internal",
            "missing@file",
            "partial@file",
            "secure@file",
            "split@file"
        ]
    );

    let app = body_json(&api_get(&proxy, &client, "/api/http/routers/app@file").await);
    assert_eq!(app["status"], "enabled");
    assert_eq!(app["using"], json!(["web"]));
    assert_eq!(app["middlewares"], json!(["auth@file", "strip@file"]));
    assert_eq!(app["priorityStr"], "19");

    let partial = body_json(&api_get(&proxy, &client, "/api/http/routers/partial@file").await);
    assert_eq!(partial["status"], "warning");
    assert_eq!(partial["using"], json!(["web"]));
    let guarded = body_json(&api_get(&proxy, &client, "/api/http/routers/guarded@file").await);
    assert_eq!(guarded["status"], "disabled");
    let bad = body_json(&api_get(&proxy, &client, "/api/http/middlewares/bad-list@file").await);
    assert_eq!(bad["status"], "disabled");
    assert_eq!(bad["usedBy"], json!(["guarded@file"]));
    let broken = body_json(&api_get(&proxy, &client, "/api/http/routers/broken@file").await);
    assert_eq!(broken["status"], "disabled");
    assert!(!broken["error"].as_array().unwrap().is_empty());

    let service = body_json(&api_get(&proxy, &client, "/api/http/services/app@file").await);
    assert_eq!(service["type"], "loadbalancer");
    assert_eq!(
        service["usedBy"],
        json!([
            "app@file",
            "broken@file",
            "guarded@file",
            "partial@file",
            "secure@file"
        ])
    );
    assert_eq!(
        service["serverStatus"],
        json!({ backends.a.url(): "UP", backends.b.url(): "UP" })
    );

    let middleware = body_json(&api_get(&proxy, &client, "/api/http/middlewares/strip@file").await);
    assert_eq!(middleware["type"], "stripprefix");
    assert_eq!(middleware["usedBy"], json!(["app@file"]));

    let overview = body_json(&api_get(&proxy, &client, "/api/overview").await);
    assert_eq!(
        overview["http"]["routers"],
        json!({"total": 11, "warnings": 1, "errors": 4})
    );

    // Pages of 4 among 11 routers: X-Next-Page 2, 3, then 1 on the last page.
    let mut seen = Vec::new();
    for (page, next) in [(1, "2"), (2, "3"), (3, "1")] {
        let reply = api_get(
            &proxy,
            &client,
            &format!("/api/http/routers?per_page=4&page={page}"),
        )
        .await;
        assert_eq!(reply.header("x-next-page"), Some(next), "page {page}");
        for router in body_json(&reply).as_array().unwrap() {
            seen.push(router["name"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, names);

    let searched = body_json(&api_get(&proxy, &client, "/api/http/routers?search=split").await);
    assert_eq!(searched.as_array().unwrap().len(), 1);
    let by_rule = body_json(&api_get(&proxy, &client, "/api/http/routers?search=s.example").await);
    assert_eq!(by_rule[0]["name"], "secure@file");

    let missing = api_get(&proxy, &client, "/api/http/routers/ghost@file").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.text(),
        "{\"message\":\"router not found: ghost@file\"}\n"
    );
    // Names with `/` or `@` may be URL-encoded.
    let encoded = api_get(&proxy, &client, "/api/http/routers/app%40file").await;
    assert_eq!(encoded.status, 200);

    let raw = body_json(&api_get(&proxy, &client, "/api/rawdata").await);
    assert_eq!(raw["routers"]["app@file"]["status"], "enabled");
    assert_eq!(
        raw["services"]["checked@file"]["serverStatus"],
        json!({ format!("http://127.0.0.1:{}", backends.dead): "DOWN" })
    );
}

/// A reload shows in the API at once: objects appear and disappear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_follows_reloads() {
    let backends = backends().await;
    let client = HttpClient::http1();
    let proxy = launch(kind(), &backends).await;
    wait_configured(&proxy, &client).await;

    let next = format!(
        r#"
http:
  routers:
    fresh:
      rule: "Host(`fresh.example`)"
      service: fresh
  services:
    fresh:
      loadBalancer:
        servers:
          - url: "{}"
"#,
        backends.a.url()
    );
    proxy.write_dynamic(&next).unwrap();
    wait_api(
        &proxy,
        &client,
        "the reload to reach the API",
        "/api/http/routers",
        |reply| {
            let names: Vec<String> = body_json(reply)
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["provider"] == "file")
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect();
            if names == ["fresh@file"] {
                Ok(())
            } else {
                Err(format!("file routers {names:?}"))
            }
        },
    )
    .await;
}

/// The dashboard: `/` redirects to it, its page and files are served, and the API it reads
/// is next to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_served_on_the_traefik_entry_point() {
    let backends = backends().await;
    let client = HttpClient::http1();
    let proxy = launch(viaduct(), &backends).await;
    wait_configured(&proxy, &client).await;

    let root = api_get(&proxy, &client, "/").await;
    assert_eq!(root.status, 301);
    assert_eq!(
        root.header("location"),
        Some(format!("{}/dashboard/", proxy.url("traefik")).as_str())
    );
    for path in ["/dashboard/", "/dashboard"] {
        let page = api_get(&proxy, &client, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(page.text().contains("app.js"));
    }
    let index = api_get(&proxy, &client, "/dashboard/index.html").await;
    assert_eq!(index.status, 301);
    for (path, content_type) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
    ] {
        let reply = api_get(&proxy, &client, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
    }
    assert_eq!(
        api_get(&proxy, &client, "/dashboard/nothing.js")
            .await
            .status,
        404
    );
    // The user's entry point does not serve the API.
    let web = client
        .get(&format!("{}/api/version", proxy.url("web")))
        .await
        .unwrap();
    assert_eq!(web.status, 404);
}
