//! The Docker provider against a real Docker Engine (`dockerd` started per test, see
//! `dockerd/mod.rs`): containers' labels become routes, live.

#![allow(clippy::unwrap_used)]

mod common;
mod dockerd;

use std::time::{Duration, Instant};

use common::{get, start_with, ROUTING_TIMEOUT};
use dockerd::Dockerd;
use viaduct_testkit::{free_port, HttpClient, ProxyUnderTest};

/// How soon a container's labels must be routed after `docker run` returns.
const LIVE: Duration = Duration::from_secs(2);

/// The standard entry point and file provider, plus `providers.docker` on this engine with
/// `docker_options` (YAML at 4 spaces) appended.
fn static_config(docker_options: &str) -> String {
    format!(
        "{}  docker:\n    endpoint: \"{{{{docker_endpoint}}}}\"\n{docker_options}\n",
        common::static_config("")
    )
}

async fn start_proxy(engine: &Dockerd, docker_options: &str, dynamic: &str) -> ProxyUnderTest {
    start_with(
        &static_config(docker_options),
        dynamic,
        &[("docker_endpoint", engine.endpoint())],
    )
    .await
}

/// Waits until `host` answers `200` with `body` (the container's name), within `timeout`.
async fn wait_served(
    proxy: &ProxyUnderTest,
    host: &str,
    path: &str,
    body: &str,
    timeout: Duration,
) -> viaduct_testkit::Reply {
    let client = HttpClient::http1();
    let url = format!("{}{path}", proxy.url("web"));
    let result = proxy
        .wait_for(&format!("{host}{path} served by {body}"), timeout, || {
            let client = &client;
            let url = &url;
            async move {
                match client.get_host(url, host).await {
                    Ok(reply) if reply.status == 200 && reply.text().trim() == body => {
                        Ok(Some(reply))
                    }
                    Ok(reply) => Err(format!("status {} body {:?}", reply.status, reply.text())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
    result.unwrap_or_else(|e| panic!("{e}\nproxy logs:\n{}", proxy.logs()))
}

/// Waits until `host` answers `status`.
async fn wait_status(proxy: &ProxyUnderTest, host: &str, status: u16) {
    let client = HttpClient::http1();
    let url = proxy.url("web");
    let result = proxy
        .wait_for(
            &format!("{host} to answer {status}"),
            ROUTING_TIMEOUT,
            || {
                let (client, url) = (&client, &url);
                async move {
                    match client.get_host(url, host).await {
                        Ok(reply) if reply.status == status => Ok(Some(())),
                        Ok(reply) => Err(format!("status {}", reply.status)),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await;
    result.unwrap_or_else(|e| panic!("{e}\nproxy logs:\n{}", proxy.logs()));
}

fn port_label(port: u16) -> String {
    port.to_string()
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn labels_are_routed_live_and_a_stopped_container_is_not() {
    let engine = Dockerd::start().await;
    let proxy = start_proxy(&engine, "", "").await;
    let port = free_port().unwrap();
    let started = Instant::now();
    engine.run_httpd(
        "web1",
        port,
        &[
            ("traefik.http.routers.web1.rule", "Host(`web1.test`)"),
            (
                "traefik.http.services.web1.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
    );
    // `docker run` itself counts against the budget.
    wait_served(&proxy, "web1.test", "/", "web1", LIVE).await;
    assert!(started.elapsed() < LIVE + Duration::from_secs(2));

    engine.docker(&["stop", "web1"]);
    wait_status(&proxy, "web1.test", 404).await;
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn replicas_with_the_same_labels_share_one_service() {
    let engine = Dockerd::start().await;
    let proxy = start_proxy(&engine, "", "").await;
    for name in ["rep1", "rep2"] {
        let port = free_port().unwrap();
        engine.run_httpd(
            name,
            port,
            &[
                ("traefik.http.routers.app.rule", "Host(`app.test`)"),
                (
                    "traefik.http.services.app.loadbalancer.server.port",
                    &port_label(port),
                ),
            ],
        );
    }
    wait_served(&proxy, "app.test", "/", "rep1", ROUTING_TIMEOUT).await;
    wait_served(&proxy, "app.test", "/", "rep2", ROUTING_TIMEOUT).await;
    // Round robin over the two servers: both answer within a few requests.
    let client = HttpClient::http1();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        seen.insert(
            get(&proxy, &client, "app.test", "/")
                .await
                .text()
                .trim()
                .to_string(),
        );
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn label_middlewares_and_a_file_middleware() {
    let engine = Dockerd::start().await;
    let dynamic = r#"http:
  middlewares:
    stamp:
      headers:
        customResponseHeaders:
          X-From-File: "yes"
"#;
    let proxy = start_proxy(&engine, "", dynamic).await;
    let port = free_port().unwrap();
    engine.run_httpd(
        "mw",
        port,
        &[
            ("traefik.http.routers.mw.rule", "Host(`mw.test`)"),
            ("traefik.http.routers.mw.middlewares", "strip,stamp@file"),
            (
                "traefik.http.middlewares.strip.stripprefix.prefixes",
                "/api",
            ),
            (
                "traefik.http.services.mw.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
    );
    let reply = wait_served(&proxy, "mw.test", "/api/index.html", "mw", ROUTING_TIMEOUT).await;
    assert_eq!(reply.header("x-from-file"), Some("yes"));
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn exposed_by_default_off_enable_and_default_rule() {
    let engine = Dockerd::start().await;
    let options = "    exposedByDefault: false\n    defaultRule: '{{default_rule}}'";
    let proxy = start_with(
        &static_config(options),
        "",
        &[
            ("docker_endpoint", engine.endpoint()),
            (
                "default_rule",
                "Host(`{{ normalize .Name }}.docker.test`)".to_string(),
            ),
        ],
    )
    .await;
    let hidden = free_port().unwrap();
    engine.run_httpd(
        "hidden_one",
        hidden,
        &[(
            "traefik.http.services.x.loadbalancer.server.port",
            &port_label(hidden),
        )],
    );
    let shown = free_port().unwrap();
    engine.run_httpd(
        "shown_one",
        shown,
        &[
            ("traefik.enable", "true"),
            (
                "traefik.http.services.x.loadbalancer.server.port",
                &port_label(shown),
            ),
        ],
    );
    // The automatic router is named after the container and ruled by the template.
    wait_served(
        &proxy,
        "shown-one.docker.test",
        "/",
        "shown_one",
        ROUTING_TIMEOUT,
    )
    .await;
    wait_status(&proxy, "hidden-one.docker.test", 404).await;
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn constraints_choose_the_containers() {
    let engine = Dockerd::start().await;
    let options = "    constraints: 'Label(`team`, `blue`) && !LabelRegex(`stage`, `^dev`)'";
    let proxy = start_proxy(&engine, options, "").await;
    for (name, team, stage) in [
        ("blue1", "blue", "prod"),
        ("blue2", "blue", "dev1"),
        ("red1", "red", "prod"),
    ] {
        let port = free_port().unwrap();
        let rule = format!("Host(`{name}.test`)");
        engine.run_httpd(
            name,
            port,
            &[
                ("team", team),
                ("stage", stage),
                (&format!("traefik.http.routers.{name}.rule"), &rule),
                (
                    &format!("traefik.http.services.{name}.loadbalancer.server.port"),
                    &port_label(port),
                ),
            ],
        );
    }
    wait_served(&proxy, "blue1.test", "/", "blue1", ROUTING_TIMEOUT).await;
    wait_status(&proxy, "blue2.test", 404).await;
    wait_status(&proxy, "red1.test", 404).await;
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn the_provider_reconnects_after_the_engine_restarts() {
    // Containers keep running while the daemon is away, so only the provider's connection
    // is lost.
    let mut engine = Dockerd::start_with(&["--live-restore"]).await;
    let proxy = start_proxy(&engine, "", "").await;
    let port = free_port().unwrap();
    let labels = [
        ("traefik.http.routers.kept.rule", "Host(`kept.test`)"),
        (
            "traefik.http.services.kept.loadbalancer.server.port",
            &port_label(port),
        ),
    ];
    engine.run_httpd("kept", port, &labels);
    wait_served(&proxy, "kept.test", "/", "kept", ROUTING_TIMEOUT).await;

    engine.stop_daemon();
    // The last configuration keeps serving while the provider retries.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = HttpClient::http1();
    let reply = get(&proxy, &client, "kept.test", "/").await;
    assert_eq!((reply.status, reply.text().trim()), (200, "kept"));

    engine.restart().await;
    let port = free_port().unwrap();
    engine.run_httpd(
        "fresh",
        port,
        &[
            ("traefik.http.routers.fresh.rule", "Host(`fresh.test`)"),
            (
                "traefik.http.services.fresh.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
    );
    // Backoff is at most a few seconds here.
    wait_served(&proxy, "fresh.test", "/", "fresh", Duration::from_secs(20)).await;
    wait_served(&proxy, "kept.test", "/", "kept", ROUTING_TIMEOUT).await;
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn a_bad_label_is_reported_and_the_other_routers_serve() {
    let engine = Dockerd::start().await;
    let proxy = start_proxy(&engine, "", "").await;
    let mark = proxy.log_mark();
    let port = free_port().unwrap();
    engine.run_httpd(
        "mixed",
        port,
        &[
            ("traefik.http.routers.good.rule", "Host(`good.test`)"),
            ("traefik.http.routers.bad.rule", "Host(`bad.test`)"),
            ("traefik.http.routers.bad.priority", "high"),
            (
                "traefik.http.services.svc.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
    );
    let other = free_port().unwrap();
    engine.run_httpd(
        "other",
        other,
        &[
            ("traefik.http.routers.other.rule", "Host(`other.test`)"),
            (
                "traefik.http.services.other.loadbalancer.server.port",
                &port_label(other),
            ),
        ],
    );
    wait_served(&proxy, "other.test", "/", "other", ROUTING_TIMEOUT).await;
    wait_status(&proxy, "bad.test", 404).await;
    // Traefik drops the whole container; Viaduct only the object of the bad label.
    if !proxy.kind().is_traefik() {
        wait_served(&proxy, "good.test", "/", "mixed", ROUTING_TIMEOUT).await;
        proxy
            .wait_for_log_line(
                mark,
                &["container mixed", "traefik.http.routers.bad.priority"],
                ROUTING_TIMEOUT,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn a_container_is_served_once_healthy() {
    let engine = Dockerd::start().await;
    let proxy = start_proxy(&engine, "", "").await;
    let port = free_port().unwrap();
    engine.run_httpd_with(
        "checked",
        port,
        &[
            ("traefik.http.routers.checked.rule", "Host(`checked.test`)"),
            (
                "traefik.http.services.checked.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
        &["--health-cmd", "test -f /w/ok", "--health-interval", "1s"],
    );
    // Starting, then unhealthy: not served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_status(&proxy, "checked.test", 404).await;
    engine.docker(&["exec", "checked", "/bin/sh", "-c", "echo > /w/ok"]);
    wait_served(&proxy, "checked.test", "/", "checked", ROUTING_TIMEOUT).await;
}

#[tokio::test]
#[ignore = "needs dockerd"]
async fn without_watch_the_containers_are_read_once() {
    let engine = Dockerd::start().await;
    let port = free_port().unwrap();
    engine.run_httpd(
        "early",
        port,
        &[
            ("traefik.http.routers.early.rule", "Host(`early.test`)"),
            (
                "traefik.http.services.early.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
    );
    let proxy = start_proxy(&engine, "    watch: false", "").await;
    wait_served(&proxy, "early.test", "/", "early", ROUTING_TIMEOUT).await;
    let port = free_port().unwrap();
    engine.run_httpd(
        "late",
        port,
        &[
            ("traefik.http.routers.late.rule", "Host(`late.test`)"),
            (
                "traefik.http.services.late.loadbalancer.server.port",
                &port_label(port),
            ),
        ],
    );
    tokio::time::sleep(LIVE).await;
    let client = HttpClient::http1();
    assert_eq!(get(&proxy, &client, "late.test", "/").await.status, 404);
}

/// `viaduct check` validates the provider's options without an engine.
#[tokio::test]
async fn check_rejects_bad_docker_options() {
    if common::kind().is_traefik() {
        eprintln!("skipped: `check` is Viaduct's own command");
        return;
    }
    for (options, needle) in [
        ("    constraints: 'Label(`a`)'", "constraints"),
        ("    defaultRule: 'Host(`{{default_rule}}`)'", "defaultrule"),
        ("    endpoint: 'ftp://x'", "endpoint"),
    ] {
        let yaml = static_config(options).replace("    endpoint: \"{{docker_endpoint}}\"\n", "");
        let proxy = viaduct_testkit::Launch::new(common::kind())
            .arg("check")
            .static_yaml(&yaml)
            .dynamic_yaml("")
            .var("default_rule", "{{ .Image }}")
            .spawn_only()
            .unwrap();
        let status = proxy.wait_exit(ROUTING_TIMEOUT).await.unwrap();
        let logs = proxy.logs().to_ascii_lowercase();
        assert!(!status.success(), "{options}: accepted\n{logs}");
        assert!(logs.contains(needle), "{options}: {needle} not in\n{logs}");
    }
}
