//! ACME storage and accounts against Pebble: `acme.json` in Traefik's layout, a restart that serves stored
//! certificates without ordering, the file moving between Traefik and Viaduct, a change of CA; and the reports for
//! resolvers that do not exist or cannot work.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
#[path = "acme/pebble.rs"]
mod pebble;
#[path = "acme/support.rs"]
mod support;

use std::time::Duration;

use pebble::{wait_certificate, Pebble, PebbleOptions};
use support::{
    dynamic_config, resolver_routers, start_proxy, static_config, stop, stored, Setup, HTTP01,
    ISSUE_TIMEOUT,
};
use viaduct_testkit::{EchoBackend, Launch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn http01_issues_stores_and_serves_after_restart_without_ordering() {
    let setup = Setup::start(PebbleOptions::default()).await;
    let acme = HTTP01;
    let dynamic = dynamic_config("Host(`app.test.example`)", "{certResolver: le}");
    let proxy = setup.start_proxy(acme, &dynamic).await;

    let (leaf, status) = setup
        .wait_certificate("app.test.example", ISSUE_TIMEOUT)
        .await;
    assert!(
        status.contains(" 200"),
        "served through the router: {status}"
    );
    assert_eq!(setup.echo.hits(), 1);

    // Traefik's acme.json: resolver → Account + Certificates, mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&setup.storage)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "acme.json mode");
    let json = stored(&setup.storage);
    // Viaduct's account sits next to the one Traefik would write (an RSA key Viaduct cannot sign with).
    assert_eq!(json["le"]["ViaductAccount"]["Email"], "admin@test.example");
    assert_eq!(json["le"]["ViaductAccount"]["KeyType"], "P256");
    assert!(json["le"]["ViaductAccount"]["Registration"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("https://127.0.0.1"));
    let certificates = json["le"]["Certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 1);
    assert_eq!(certificates[0]["domain"]["main"], "app.test.example");
    assert_eq!(certificates[0]["Store"], "default");
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(certificates[0]["certificate"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8(pem)
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    stop(proxy).await;

    // The restart serves the stored certificate at once, with the CA unreachable: no new order is needed.
    let unreachable = format!(
        "https://127.0.0.1:{}/dir",
        viaduct_testkit::free_port().unwrap()
    );
    let static_yaml = setup
        .static_config(acme)
        .replace(&setup.pebble.directory_url(), &unreachable);
    let proxy = start_proxy(&setup.pebble, &static_yaml, &dynamic, &setup.echo).await;
    let (again, _) = setup
        .wait_certificate("app.test.example", Duration::from_secs(5))
        .await;
    assert_eq!(again, leaf, "the stored certificate is served");
    assert!(!proxy.logs().contains("certificate obtained"));
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble and traefik"]
async fn acme_json_moves_between_traefik_and_viaduct_both_ways() {
    let Some(traefik) = viaduct_testkit::ProxyKind::traefik() else {
        panic!("set TRAEFIK_BIN to Traefik's binary");
    };
    let setup = Setup::start(PebbleOptions::default()).await;
    let acme = HTTP01;
    let static_yaml = setup.static_config(acme);
    let unreachable = format!(
        "https://127.0.0.1:{}/dir",
        viaduct_testkit::free_port().unwrap()
    );
    let offline_yaml = static_yaml.replace(&setup.pebble.directory_url(), &unreachable);
    let one = dynamic_config("Host(`traefik.test.example`)", "{certResolver: le}");
    let both = &resolver_routers(&["traefik.test.example", "viaduct.test.example"]);
    let launch = |kind: viaduct_testkit::ProxyKind, static_yaml: &str, dynamic: &str| {
        Launch::new(kind)
            .static_yaml(static_yaml)
            .dynamic_yaml(dynamic)
            .var("echo", setup.echo.url())
            .ready_port(setup.pebble.http_port)
            .ready_port(setup.pebble.tls_port)
    };

    // Traefik orders and writes acme.json.
    let proxy = launch(traefik.clone(), &static_yaml, &one)
        .start()
        .await
        .unwrap();
    let (from_traefik, _) = setup
        .wait_certificate("traefik.test.example", ISSUE_TIMEOUT)
        .await;
    stop(proxy).await;

    // Viaduct serves Traefik's certificate at once, then orders the second one with its own account.
    let proxy = launch(common::viaduct(), &static_yaml, both)
        .start()
        .await
        .unwrap();
    let (served, _) = setup
        .wait_certificate("traefik.test.example", Duration::from_secs(5))
        .await;
    assert_eq!(served, from_traefik);
    let (from_viaduct, _) = setup
        .wait_certificate("viaduct.test.example", ISSUE_TIMEOUT)
        .await;
    stop(proxy).await;
    let json = stored(&setup.storage);
    assert!(
        json["le"]["Account"]["PrivateKey"].is_string(),
        "Traefik's account is kept"
    );
    assert_eq!(json["le"]["Certificates"].as_array().unwrap().len(), 2);

    // Traefik takes the file back and serves both, without the CA.
    let proxy = launch(traefik, &offline_yaml, both).start().await.unwrap();
    let (served, _) = setup
        .wait_certificate("viaduct.test.example", Duration::from_secs(10))
        .await;
    assert_eq!(served, from_viaduct);
    let (served, _) = setup
        .wait_certificate("traefik.test.example", Duration::from_secs(5))
        .await;
    assert_eq!(served, from_traefik);
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_resolver_is_reported_and_the_router_served_with_the_default_certificate() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let static_yaml = r#"log:
  level: DEBUG
entryPoints:
  websecure:
    address: "{{addr:websecure}}"
providers:
  providersThrottleDuration: 100ms
  file:
    filename: "{{dynamic_file}}"
"#;
    let dynamic = dynamic_config("Host(`app.test.example`)", "{certResolver: missing}");
    let proxy = Launch::new(common::viaduct())
        .static_yaml(static_yaml)
        .dynamic_yaml(&dynamic)
        .var("echo", echo.url())
        .start()
        .await
        .unwrap();
    proxy
        .wait_for_log("certResolver does not exist", Duration::from_secs(10))
        .await
        .unwrap();
    // The default certificate does not verify: curl -k, with SNI app.test.example.
    let port = proxy.port("websecure");
    let status = viaduct_testkit::wait_until(
        "the router to answer over TLS",
        Duration::from_secs(10),
        || async move {
            let output = std::process::Command::new("curl")
                .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(["--resolve", &format!("app.test.example:{port}:127.0.0.1")])
                .arg(format!("https://app.test.example:{port}/"))
                .output()
                .map_err(|e| e.to_string())?;
            let status = String::from_utf8_lossy(&output.stdout).to_string();
            if status == "200" {
                Ok(Some(status))
            } else {
                Err(status)
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(status, "200");
    assert_eq!(echo.hits(), 1);
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_unusable_resolvers_and_unknown_cert_resolvers() {
    let static_yaml = r#"entryPoints:
  websecure:
    address: "{{addr:websecure}}"
providers:
  file:
    filename: "{{dynamic_file}}"
certificatesResolvers:
  nostorage:
    acme:
      httpChallenge: {entryPoint: websecure}
  unknowndns:
    acme:
      storage: acme.json
      dnsChallenge: {provider: someclouddns}
  good:
    acme:
      storage: acme.json
      tlsChallenge: {}
"#;
    let dynamic = dynamic_config("Host(`app.test.example`)", "{certResolver: missing}");
    let proxy = Launch::new(common::viaduct())
        .arg("check")
        .static_yaml(static_yaml)
        .dynamic_yaml(&dynamic)
        .var("echo", "http://127.0.0.1:1")
        .spawn_only()
        .unwrap();
    let status = proxy.wait_exit(Duration::from_secs(20)).await.unwrap();
    let logs = proxy.logs();
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains("certificatesResolvers.nostorage: acme.storage is required"),
        "{logs}"
    );
    assert!(
        logs.contains("certificatesResolvers.unknowndns") && logs.contains("someclouddns"),
        "{logs}"
    );
    assert!(logs.contains("certResolver \"missing\""), "{logs}");
    assert!(!logs.contains("certificatesResolvers.good"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn a_new_ca_gets_a_new_account_and_stored_certificates_keep_serving() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = HTTP01;
    let first_ca = Pebble::start(PebbleOptions::default()).await;
    let dynamic = dynamic_config("Host(`first.test.example`)", "{certResolver: le}");
    let proxy = start_proxy(
        &first_ca,
        &static_config(&first_ca, &storage, acme),
        &dynamic,
        &echo,
    )
    .await;
    let first_root = first_ca.issuing_root();
    wait_certificate(
        first_ca.tls_port,
        "first.test.example",
        &first_root,
        ISSUE_TIMEOUT,
    )
    .await;
    stop(proxy).await;
    let first_account = stored(&storage)["le"]["ViaductAccount"]["Registration"]["uri"].clone();
    drop(first_ca);

    // Another CA (as when moving from staging to production): the stored account is not tried there.
    let second_ca = Pebble::start(PebbleOptions::default()).await;
    let both = &resolver_routers(&["first.test.example", "second.test.example"]);
    let proxy = start_proxy(
        &second_ca,
        &static_config(&second_ca, &storage, acme),
        both,
        &echo,
    )
    .await;
    let second_root = second_ca.issuing_root();
    wait_certificate(
        second_ca.tls_port,
        "second.test.example",
        &second_root,
        ISSUE_TIMEOUT,
    )
    .await;
    wait_certificate(
        second_ca.tls_port,
        "first.test.example",
        &first_root,
        Duration::from_secs(5),
    )
    .await;
    let json = stored(&storage);
    assert_ne!(
        json["le"]["ViaductAccount"]["Registration"]["uri"],
        first_account
    );
    assert_eq!(json["le"]["Certificates"].as_array().unwrap().len(), 2);
    stop(proxy).await;
}
