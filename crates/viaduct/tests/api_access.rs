//! Reaching the API other ways than `api.insecure` on the default base path: the
//! `api@internal` service behind a user router with authentication, and `api.basePath`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::api::{api_get, api_static_config, body_json};
use common::{kind, viaduct};
use serde_json::json;
use viaduct_testkit::{HttpClient, Launch, RequestSpec};

/// Without `api.insecure`, the API is reached through a user router to `api@internal`,
/// behind the user's authentication, on the user's entry point; no `traefik` entry point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_internal_behind_a_user_router_with_basic_auth() {
    let static_yaml = r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: DEBUG
api: {}
entryPoints:
  web:
    address: "{{addr:web}}"
providers:
  providersThrottleDuration: 100ms
  file:
    filename: "{{dynamic_file}}"
"#;
    let dynamic = r#"
http:
  routers:
    admin:
      rule: "Host(`admin.example`) && (PathPrefix(`/api`) || PathPrefix(`/dashboard`))"
      service: api@internal
      middlewares: [auth]
  middlewares:
    auth:
      basicAuth:
        users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
"#;
    let proxy = Launch::new(kind())
        .static_yaml(static_yaml)
        .dynamic_yaml(dynamic)
        .start()
        .await
        .unwrap();
    let client = HttpClient::http1();
    let url = format!("{}/api/http/routers/admin@file", proxy.url("web"));
    let authorised = RequestSpec::get(&url)
        .header("host", "admin.example")
        .header("authorization", "Basic dGVzdDp0ZXN0");
    let reply = common::wait_reply(&proxy, &client, authorised, |r| r.status == 200).await;
    let router = body_json(&reply);
    assert_eq!(router["service"], "api@internal");
    assert_eq!(router["middlewares"], json!(["auth@file"]));

    let anonymous = client.get_host(&url, "admin.example").await.unwrap();
    assert_eq!(anonymous.status, 401);

    let dashboard = RequestSpec::get(&format!("{}/dashboard/", proxy.url("web")))
        .header("host", "admin.example")
        .header("authorization", "Basic dGVzdDp0ZXN0");
    let page = client.send(dashboard).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));

    // Traefik's internal routers exist only with `api.insecure`.
    let routers = RequestSpec::get(&format!("{}/api/http/routers", proxy.url("web")))
        .header("host", "admin.example")
        .header("authorization", "Basic dGVzdDp0ZXN0");
    let names: Vec<String> = body_json(&client.send(routers).await.unwrap())
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["admin@file"]);
}

/// `api.basePath` moves the API, the dashboard and the root redirect under a prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_path_moves_api_and_dashboard() {
    let proxy = Launch::new(viaduct())
        .static_yaml(&api_static_config("  basePath: /admin", ""))
        .dynamic_yaml("{}")
        .start()
        .await
        .unwrap();
    let client = HttpClient::http1();
    let version = RequestSpec::get(&format!("{}/admin/api/version", proxy.url("traefik")));
    common::wait_reply(&proxy, &client, version, |r| r.status == 200).await;
    assert_eq!(api_get(&proxy, &client, "/api/version").await.status, 404);
    let root = api_get(&proxy, &client, "/admin/").await;
    assert_eq!(root.status, 301);
    assert_eq!(
        root.header("location"),
        Some(format!("{}/admin/dashboard/", proxy.url("traefik")).as_str())
    );
    let page = api_get(&proxy, &client, "/admin/dashboard/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("app.js"));
    let script = api_get(&proxy, &client, "/admin/dashboard/app.js").await;
    assert_eq!(script.status, 200);
}
