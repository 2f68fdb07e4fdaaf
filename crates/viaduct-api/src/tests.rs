//! Request-level tests of the API handler: routing under `basePath`, methods, the dashboard
//! mount, and the JSON of a small configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Method, Uri};
use serde_json::{json, Value};
use viaduct_config::HttpConfig;

use crate::{
    serve_api, serve_dashboard, Api, ApiInfo, ApiSettings, EntryPointFacts, Problems, RuntimeView,
    ServerStatuses,
};

fn api(base_path: &str) -> Api {
    let http: HttpConfig = serde_json::from_value(json!({
        "routers": {"r@file": {"rule": "Path(`/`)", "service": "s@file"}},
        "services": {"s@file": {"loadBalancer": {"servers": [{"url": "http://a"}]}}}
    }))
    .unwrap();
    let none = BTreeMap::new();
    let problems = Problems {
        errors: &none,
        warnings: &none,
    };
    let eps = [EntryPointFacts {
        name: "web".into(),
        as_default: false,
        is_tcp: true,
    }];
    Api {
        info: Arc::new(ApiInfo {
            settings: ApiSettings {
                base_path: base_path.into(),
                dashboard: true,
                debug: false,
                disable_dashboard_ad: false,
                dashboard_name: Some("Edge".into()),
            },
            version: "1.0.0".into(),
            codename: "viaduct".into(),
            start_date: "2026-01-01T00:00:00Z".into(),
            entry_points: vec![("web".into(), json!({"address": ":80", "name": "web"}))],
            tracing: String::new(),
            metrics: String::new(),
            access_log: false,
            providers: vec!["File".into()],
        }),
        runtime: RuntimeView::build(&[&http], problems, &eps),
    }
}

fn servers() -> ServerStatuses {
    BTreeMap::from([(
        "s@file".to_string(),
        BTreeMap::from([("http://a".to_string(), "UP")]),
    )])
}

fn get(api: &Api, uri: &str) -> (u16, Value, Option<String>) {
    let reply = serve_api(&Method::GET, &uri.parse::<Uri>().unwrap(), api, &servers);
    let status = reply.status().as_u16();
    let next = reply
        .headers()
        .get("x-next-page")
        .map(|v| v.to_str().unwrap().to_string());
    let body = serde_json::from_slice(reply.body()).unwrap_or(Value::Null);
    (status, body, next)
}

#[test]
fn serves_under_the_base_path_only() {
    let api = api("/admin/");
    assert_eq!(get(&api, "/admin/api/http/routers").0, 200);
    assert_eq!(get(&api, "/api/http/routers").0, 404);
    let (_, version, _) = get(&api, "/admin/api/version");
    assert_eq!(version["dashboardName"], "Edge");
    let redirect = serve_api(
        &Method::GET,
        &"/admin/dashboard".parse().unwrap(),
        &api,
        &servers,
    );
    assert_eq!(redirect.status(), 301);
    assert_eq!(redirect.headers()["location"], "/admin/dashboard/");
    let page = serve_api(
        &Method::GET,
        &"/admin/dashboard/".parse().unwrap(),
        &api,
        &servers,
    );
    assert_eq!(page.status(), 200);
}

#[test]
fn lists_carry_live_server_status_and_pages() {
    let api = api("/");
    let (status, services, next) = get(&api, "/api/http/services");
    assert_eq!(status, 200);
    assert_eq!(next.as_deref(), Some("1"));
    assert_eq!(services[0]["serverStatus"], json!({"http://a": "UP"}));
    assert_eq!(services[0]["usedBy"], json!(["r@file"]));
    let (_, raw, _) = get(&api, "/api/rawdata");
    assert_eq!(raw["routers"]["r@file"]["using"], json!(["web"]));
    assert!(raw["routers"]["r@file"].get("name").is_none());
    let (status, body, _) = get(&api, "/api/tcp/routers/x");
    assert_eq!(
        (status, body),
        (404, json!({"message": "router not found: x"}))
    );
}

#[test]
fn only_reads_are_allowed() {
    let api = api("/");
    let reply = serve_api(
        &Method::POST,
        &"/api/overview".parse().unwrap(),
        &api,
        &servers,
    );
    assert_eq!(reply.status(), 405);
}

#[test]
fn dashboard_files_are_embedded() {
    for (path, status) in [
        ("/", 200),
        ("/app.js", 200),
        ("/app.css", 200),
        ("/index.html", 301),
        ("/x", 404),
    ] {
        let reply = serve_dashboard(&Method::GET, &path.parse().unwrap());
        assert_eq!(reply.status().as_u16(), status, "{path}");
    }
}
