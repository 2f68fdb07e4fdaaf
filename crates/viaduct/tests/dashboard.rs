//! The dashboard in a real browser (headless Chromium driven over WebDriver): pages load
//! without console errors, list the running configuration's routers, search and status
//! filters narrow the list, a router's page shows the path a request takes, and the page
//! follows reloads by itself. Screenshots at phone and desktop sizes are saved under
//! `target/tmp/dashboard/`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
#[path = "dashboard/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use common::api::{api_static_config, wait_api};
use common::viaduct;
use serde_json::Value;
use viaduct_testkit::{free_port, EchoBackend, HttpClient, Launch, ProxyUnderTest};
use webdriver::Browser;

const DYNAMIC: &str = r#"
http:
  routers:
    shop-front:
      rule: "Host(`shop.example`) && PathPrefix(`/`)"
      service: shop
      middlewares: [auth, strip]
      entryPoints: [web]
      tls: {}
    shop-admin:
      rule: "Host(`shop.example`) && PathPrefix(`/admin`)"
      service: shop
      entryPoints: [web]
    shop-broken:
      rule: "Host(`broken.example`"
      service: shop
    blog:
      rule: "Host(`blog.example`)"
      service: blog
  services:
    shop:
      loadBalancer:
        servers:
          - url: "{{up}}"
          - url: "http://127.0.0.1:{{dead}}"
        healthCheck:
          path: /health
          interval: 200ms
    blog:
      weighted:
        services:
          - name: shop
            weight: 2
  middlewares:
    auth:
      basicAuth:
        users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
    strip:
      stripPrefix:
        prefixes: ["/shop"]
tcp:
  routers:
    db-pass:
      rule: "HostSNI(`db.example`)"
      service: db
      tls:
        passthrough: true
  services:
    db:
      loadBalancer:
        servers:
          - address: "127.0.0.1:{{dead}}"
"#;

const ROUTERS: &[&str] = &[
    "api@internal",
    "blog@file",
    "dashboard@internal",
    "shop-admin@file",
    "shop-broken@file",
    "shop-front@file",
];

const WAIT: Duration = Duration::from_secs(15);

const ROW_NAMES: &str = "return Array.from(document.querySelectorAll('#list tbody tr'))\
     .map(r => r.dataset.name)";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard")
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn start_proxy(up: &EchoBackend, dead: u16) -> ProxyUnderTest {
    let proxy = Launch::new(viaduct())
        .static_yaml(&api_static_config("", "").replace("level: DEBUG", "level: INFO"))
        .dynamic_yaml(DYNAMIC)
        .var("up", up.url())
        .var("dead", dead.to_string())
        .start()
        .await
        .unwrap();
    wait_api(
        &proxy,
        &HttpClient::http1(),
        "the health check to mark a server down",
        "/api/http/services/shop@file",
        |reply| match reply.text() {
            text if text.contains("DOWN") => Ok(()),
            text => Err(text),
        },
    )
    .await;
    proxy
}

/// Fails on any console error logged since the last check.
async fn assert_clean_console(browser: &Browser, page: &str) {
    let severe: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "{page}: console errors: {severe:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium"]
async fn dashboard_in_headless_chromium() {
    let up = EchoBackend::start("up").await.unwrap();
    let dead = free_port().unwrap();
    let proxy = start_proxy(&up, dead).await;
    let browser = Browser::start().await;
    let shots = screenshots();
    let root = proxy.url("traefik");

    for (label, width, height) in [("desktop", 1440, 900), ("phone", 390, 844)] {
        browser.set_window(width, height).await;

        // Overview: `/` redirects to the dashboard, which shows both entry points and counts.
        browser.goto(&format!("{root}/")).await;
        browser
            .wait_for(
                "the overview",
                WAIT,
                "return document.querySelectorAll('#entrypoints .ep').length",
                |v| v == 2,
            )
            .await;
        let routers_total = browser
            .execute(
                "return document.querySelector('[data-stat=routers] .total').textContent",
                Value::Array(vec![]),
            )
            .await;
        assert_eq!(routers_total, "6");
        let tcp_routers_total = browser
            .execute(
                "return document.querySelector('[data-stat=tcp-routers] .total').textContent",
                Value::Array(vec![]),
            )
            .await;
        assert_eq!(tcp_routers_total, "1");
        assert_fits(&browser, label, "overview").await;
        browser
            .screenshot(&shots.join(format!("overview-{label}.png")))
            .await;
        assert_clean_console(&browser, "overview").await;

        // Routers list: every router of the running configuration.
        browser
            .goto(&format!("{root}/dashboard/#/http/routers"))
            .await;
        let listed = browser
            .wait_for("the routers list", WAIT, ROW_NAMES, |v| {
                names(v).len() == ROUTERS.len()
            })
            .await;
        assert_eq!(names(&listed), ROUTERS);
        assert_fits(&browser, label, "routers").await;
        browser
            .screenshot(&shots.join(format!("routers-{label}.png")))
            .await;

        // Search narrows by name (and rule); the status filter narrows further.
        browser.type_into("#search", "shop").await;
        let searched = browser
            .wait_for("the search to filter", WAIT, ROW_NAMES, |v| {
                names(v).len() == 3
            })
            .await;
        assert_eq!(
            names(&searched),
            ["shop-admin@file", "shop-broken@file", "shop-front@file"]
        );
        browser.click("[data-status=disabled]").await;
        let errors = browser
            .wait_for("the status filter", WAIT, ROW_NAMES, |v| {
                names(v).len() == 1
            })
            .await;
        assert_eq!(names(&errors), ["shop-broken@file"]);
        browser.click("[data-status=all]").await;
        browser
            .wait_for("the status filter to reset", WAIT, ROW_NAMES, |v| {
                names(v).len() == 3
            })
            .await;
        browser.clear("#search").await;
        browser.type_into("#search", "blog.example").await;
        let by_rule = browser
            .wait_for("a search by rule", WAIT, ROW_NAMES, |v| names(v).len() == 1)
            .await;
        assert_eq!(names(&by_rule), ["blog@file"]);

        // Column headers (desktop; phones show cards without headers) sort through the
        // API: priority ascending, then descending.
        browser.clear("#search").await;
        browser.type_into("#search", " ").await;
        browser
            .wait_for("the search to clear", WAIT, ROW_NAMES, |v| {
                names(v).len() == ROUTERS.len()
            })
            .await;
        if label == "desktop" {
            browser.click("[data-sort=priority]").await;
            browser
                .wait_for("ascending priorities", WAIT, ROW_NAMES, |v| {
                    names(v).first().map(String::as_str) == Some("blog@file")
                })
                .await;
            browser.click("[data-sort=priority]").await;
            browser
                .wait_for("descending priorities", WAIT, ROW_NAMES, |v| {
                    names(v).first().map(String::as_str) == Some("api@internal")
                })
                .await;
        }
        assert_clean_console(&browser, "routers").await;

        // A router's page: entry points → rule → TLS → middlewares → service → servers.
        browser
            .goto(&format!(
                "{root}/dashboard/#/http/routers/shop-front%40file"
            ))
            .await;
        let steps = browser
            .wait_for(
                "the request path",
                WAIT,
                "return Array.from(document.querySelectorAll('#flow [data-step]'))\
                 .map(s => s.dataset.step + ': ' + s.textContent)",
                |v| names(v).len() == 7,
            )
            .await;
        let steps = names(&steps);
        assert!(steps[0].starts_with("entrypoints") && steps[0].contains("web"));
        assert!(steps[1].contains("Host(`shop.example`) && PathPrefix(`/`)"));
        assert!(steps[2].starts_with("tls") && steps[2].contains("default"));
        assert!(steps[3].contains("auth@file") && steps[3].contains("basicauth"));
        assert!(steps[4].contains("strip@file") && steps[4].contains("stripprefix"));
        assert!(steps[5].starts_with("service") && steps[5].contains("shop@file"));
        assert!(steps[6].starts_with("servers") && steps[6].contains("1/2 up"));
        let servers = browser
            .execute(
                "return Array.from(document.querySelectorAll('#flow [data-server]'))\
                 .map(s => s.dataset.server + ' ' + s.querySelector('.badge').textContent)",
                Value::Array(vec![]),
            )
            .await;
        assert_eq!(
            names(&servers),
            [
                format!("{} UP", up.url()),
                format!("http://127.0.0.1:{dead} DOWN")
            ]
        );
        assert_fits(&browser, label, "router").await;
        browser
            .screenshot(&shots.join(format!("router-{label}.png")))
            .await;
        assert_clean_console(&browser, "router").await;

        // A service's page lists its servers and the routers using it.
        browser
            .goto(&format!("{root}/dashboard/#/http/services/shop%40file"))
            .await;
        browser
            .wait_for(
                "the service page",
                WAIT,
                "return document.querySelectorAll('#servers [data-server]').length",
                |v| v == 2,
            )
            .await;
        browser
            .screenshot(&shots.join(format!("service-{label}.png")))
            .await;
        assert_clean_console(&browser, "service").await;

        // A broken router's page says what is wrong.
        browser
            .goto(&format!(
                "{root}/dashboard/#/http/routers/shop-broken%40file"
            ))
            .await;
        let errors = browser
            .wait_for(
                "the errors panel",
                WAIT,
                "const e = document.querySelector('#errors'); return e ? e.textContent : ''",
                |v| v.as_str().is_some_and(|t| !t.is_empty()),
            )
            .await;
        assert!(errors.as_str().unwrap().contains("rule"), "{errors}");
        browser
            .screenshot(&shots.join(format!("router-error-{label}.png")))
            .await;

        // A middleware's page shows its type and options.
        browser
            .goto(&format!("{root}/dashboard/#/http/middlewares/strip%40file"))
            .await;
        browser
            .wait_for(
                "the middleware page",
                WAIT,
                "const c = document.querySelector('pre.config'); return c ? c.textContent : ''",
                |v| v.as_str().is_some_and(|t| t.contains("/shop")),
            )
            .await;
        assert_fits(&browser, label, "middleware").await;
        browser
            .screenshot(&shots.join(format!("middleware-{label}.png")))
            .await;
        assert_clean_console(&browser, "error and middleware pages").await;

        // TCP: the routers list names the router, and its page shows its configuration.
        browser
            .goto(&format!("{root}/dashboard/#/tcp/routers"))
            .await;
        browser
            .wait_for("the TCP routers list", WAIT, ROW_NAMES, |v| {
                names(v) == ["db-pass@file"]
            })
            .await;
        assert_fits(&browser, label, "tcp routers").await;
        browser
            .screenshot(&shots.join(format!("tcp-routers-{label}.png")))
            .await;
        browser.click("#list tbody tr").await;
        browser
            .wait_for(
                "the TCP router page",
                WAIT,
                "const c = document.querySelector('pre.config'); return c ? c.textContent : ''",
                |v| v.as_str().is_some_and(|t| t.contains("passthrough")),
            )
            .await;
        assert_fits(&browser, label, "tcp router").await;
        assert_clean_console(&browser, "tcp pages").await;
    }

    // Live updates: a reload shows up in the open list without any navigation.
    browser.set_window(1440, 900).await;
    browser
        .goto(&format!("{root}/dashboard/#/http/routers"))
        .await;
    browser
        .wait_for("the routers list", WAIT, ROW_NAMES, |v| {
            names(v).len() == ROUTERS.len()
        })
        .await;
    let reloaded = DYNAMIC.replace(
        "    blog:\n      rule:",
        "    news:\n      rule: \"Host(`news.example`)\"\n      service: blog\n    blog:\n      rule:",
    );
    proxy.write_dynamic(&reloaded).unwrap();
    browser
        .wait_for("the new router to appear", WAIT, ROW_NAMES, |v| {
            names(v).contains(&"news@file".to_string())
        })
        .await;
    assert_clean_console(&browser, "live update").await;
    browser.quit().await;
}

/// Nothing may stick out sideways: a phone user must never scroll horizontally.
async fn assert_fits(browser: &Browser, label: &str, page: &str) {
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            Value::Array(vec![]),
        )
        .await;
    assert!(
        overflow.as_i64().unwrap_or(0) <= 0,
        "{page} ({label}): the page is {overflow}px wider than the window"
    );
}
