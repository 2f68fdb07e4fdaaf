//! The static configuration as Traefik reads it: file, flags, environment; unknown keys; the
//! `check`, `version` and `--help` commands; the embedded default configuration.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use common::{kind, wait_backend, ONE_ROUTE};
use viaduct_testkit::{ConfigSource, EchoBackend, HttpClient, Launch, ProxyUnderTest};

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

async fn run_to_exit(launch: Launch) -> (std::process::ExitStatus, ProxyUnderTest) {
    let proxy = launch.spawn_only().unwrap();
    let status = proxy
        .wait_exit(EXIT_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", proxy.logs()));
    (status, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_configure_entry_point_and_file_provider() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let flags = [
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--entryPoints.web.address={{addr:web}}",
        "--providers.file.filename={{dynamic_file}}",
        "--providers.providersThrottleDuration=100ms",
    ];
    let proxy = Launch::new(kind())
        .source(ConfigSource::Flags(
            flags.iter().map(|f| f.to_string()).collect(),
        ))
        .dynamic_yaml(ONE_ROUTE)
        .var("echo", echo.url())
        .start()
        .await
        .unwrap();
    wait_backend(&proxy, &HttpClient::http1(), "app.test", "/flags", "echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_configures_entry_point_and_file_provider() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let env = [
        ("TRAEFIK_GLOBAL_CHECKNEWVERSION", "false"),
        ("TRAEFIK_GLOBAL_SENDANONYMOUSUSAGE", "false"),
        ("TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", "{{addr:web}}"),
        ("TRAEFIK_PROVIDERS_FILE_FILENAME", "{{dynamic_file}}"),
        ("TRAEFIK_PROVIDERS_PROVIDERSTHROTTLEDURATION", "100ms"),
    ];
    let proxy = Launch::new(kind())
        .source(ConfigSource::Env(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
        .dynamic_yaml(ONE_ROUTE)
        .var("echo", echo.url())
        .start()
        .await
        .unwrap();
    wait_backend(&proxy, &HttpClient::http1(), "app.test", "/env", "echo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_static_key_fails_startup_and_names_the_key() {
    let static_yaml = common::static_config("    bogusKey: 1");
    let (status, proxy) = run_to_exit(Launch::new(kind()).static_yaml(&static_yaml)).await;
    assert!(!status.success(), "started despite an unknown key");
    assert!(
        proxy.logs().to_ascii_lowercase().contains("boguskey"),
        "the error does not name the key:\n{}",
        proxy.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_command_accepts_good_and_rejects_bad_configuration() {
    if kind().is_traefik() {
        eprintln!("skipped: `check` is Viaduct's own command; Traefik has none");
        return;
    }
    let good = common::static_config("");
    let (status, proxy) = run_to_exit(
        Launch::new(kind())
            .arg("check")
            .static_yaml(&good)
            .dynamic_yaml(ONE_ROUTE)
            .var("echo", "http://127.0.0.1:1"),
    )
    .await;
    assert!(
        status.success(),
        "check rejected a good configuration:\n{}",
        proxy.logs()
    );

    let bad_static = common::static_config("    bogusKey: 1");
    let (status, proxy) =
        run_to_exit(Launch::new(kind()).arg("check").static_yaml(&bad_static)).await;
    assert!(!status.success(), "check accepted an unknown static key");
    let logs = proxy.logs().to_ascii_lowercase();
    assert!(
        logs.contains("boguskey") && logs.contains("static.yml"),
        "error must name key and file:\n{logs}"
    );

    let bad_dynamic = "http:\n  routers:\n    r:\n      rule: \"Host(`a.test`)\"\n      service: s\n      bogusRouterKey: 1\n";
    let (status, proxy) = run_to_exit(
        Launch::new(kind())
            .arg("check")
            .static_yaml(&good)
            .dynamic_yaml(bad_dynamic),
    )
    .await;
    assert!(!status.success(), "check accepted an unknown dynamic key");
    let logs = proxy.logs().to_ascii_lowercase();
    assert!(
        logs.contains("bogusrouterkey") && logs.contains("dynamic.yml"),
        "error must name key and file:\n{logs}"
    );

    // An object the compiler rejects is named with the file and line that define it.
    let unknown_service =
        "http:\n  routers:\n    r:\n      rule: \"Host(`a.test`)\"\n      service: nowhere\n";
    let (status, proxy) = run_to_exit(
        Launch::new(kind())
            .arg("check")
            .static_yaml(&good)
            .dynamic_yaml(unknown_service),
    )
    .await;
    assert!(!status.success(), "check accepted an unknown service");
    let logs = proxy.logs();
    assert!(
        logs.contains("dynamic.yml:3: router \"r@file\": ")
            && logs.contains("\"nowhere@file\" does not exist"),
        "error must name file, line, router and service:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_command_prints_a_version() {
    let (status, proxy) = run_to_exit(
        Launch::new(kind())
            .arg("version")
            .source(ConfigSource::Nothing),
    )
    .await;
    assert!(status.success());
    let out = proxy.stdout();
    let has_version = out
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|word| word.split('.').filter(|part| !part.is_empty()).count() >= 2);
    assert!(has_version, "no version number in {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_prints_usage() {
    let (status, proxy) = run_to_exit(
        Launch::new(kind())
            .arg("--help")
            .source(ConfigSource::Nothing),
    )
    .await;
    assert!(status.success(), "--help failed:\n{}", proxy.logs());
    assert!(
        proxy.logs().to_ascii_lowercase().contains("usage"),
        "{}",
        proxy.logs()
    );
}

/// No configuration anywhere: a whoami on `:8080`. Traefik's default differs (an `http` entry
/// point on `:80` and no routes), so this is Viaduct-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_answers_on_8080() {
    if kind().is_traefik() {
        eprintln!("skipped: the embedded default is Viaduct's own");
        return;
    }
    if std::net::TcpListener::bind("0.0.0.0:8080").is_err() {
        eprintln!("skipped: port 8080 is busy on this machine");
        return;
    }
    let proxy = Launch::new(kind())
        .source(ConfigSource::Nothing)
        .ready_port(8080)
        .start()
        .await
        .unwrap();
    let reply = HttpClient::http1()
        .get("http://127.0.0.1:8080/whoami-probe?x=1")
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().contains("/whoami-probe"),
        "the page does not describe the request: {}",
        reply.text()
    );
    drop(proxy);
}
