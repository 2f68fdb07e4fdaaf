//! Automatic certificates over ACME against Pebble, Let's Encrypt's test CA: HTTP-01, TLS-ALPN-01 and DNS-01 (the
//! `exec` provider publishing through Pebble's fake DNS), `tls.domains` with SANs, a wildcard, storage in Traefik's
//! `acme.json`, a restart that serves stored certificates without ordering, renewal of a short-lived certificate, and
//! Pebble's bad-nonce rejections.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
#[path = "acme/pebble.rs"]
mod pebble;

use std::path::Path;
use std::time::Duration;

use pebble::{wait_certificate, Pebble, PebbleOptions};
use viaduct_testkit::{EchoBackend, Launch, ProxyUnderTest};

/// Issuance includes validation by Pebble and, after a failure, a retry 30 s later.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(90);

/// Entry points `web` (plain, HTTP-01) and `websecure` (TLS, TLS-ALPN-01) on the ports Pebble validates, and one
/// resolver `le` whose `acme` section is `acme` (YAML, 6-space indent, appended to the common settings).
fn static_config(pebble: &Pebble, storage: &Path, acme: &str) -> String {
    format!(
        r#"log:
  level: DEBUG
entryPoints:
  web:
    address: "127.0.0.1:{http}"
  websecure:
    address: "127.0.0.1:{tls}"
providers:
  providersThrottleDuration: 100ms
  file:
    filename: "{{{{dynamic_file}}}}"
certificatesResolvers:
  le:
    acme:
      email: admin@test.example
      caServer: "{server}"
      caCertificates: ["{ca}"]
      storage: "{storage}"
{acme}
"#,
        http = pebble.http_port,
        tls = pebble.tls_port,
        server = pebble.directory_url(),
        ca = pebble.https_ca().display(),
        storage = storage.display(),
    )
}

/// One TLS router on `websecure` for `rule`, with `tls` (YAML flow mapping) and the echo backend.
fn dynamic_config(rule: &str, tls: &str) -> String {
    format!(
        r#"
http:
  routers:
    app:
      rule: "{rule}"
      entryPoints: [websecure]
      service: echo
      tls: {tls}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{{{echo}}}}"
"#
    )
}

async fn start_proxy(
    pebble: &Pebble,
    static_yaml: &str,
    dynamic: &str,
    echo: &EchoBackend,
) -> ProxyUnderTest {
    Launch::new(common::viaduct())
        .static_yaml(static_yaml)
        .dynamic_yaml(dynamic)
        .var("echo", echo.url())
        .ready_port(pebble.http_port)
        .ready_port(pebble.tls_port)
        .start()
        .await
        .unwrap()
}

async fn stop(proxy: ProxyUnderTest) {
    proxy.sigterm().unwrap();
    proxy.wait_exit(Duration::from_secs(10)).await.unwrap();
}

fn stored(storage: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(storage).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn http01_issues_stores_and_serves_after_restart_without_ordering() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: web";
    let dynamic = dynamic_config("Host(`app.test.example`)", "{certResolver: le}");
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, acme),
        &dynamic,
        &echo,
    )
    .await;

    let root = pebble.issuing_root();
    let (leaf, status) =
        wait_certificate(pebble.tls_port, "app.test.example", &root, ISSUE_TIMEOUT).await;
    assert!(
        status.contains(" 200"),
        "served through the router: {status}"
    );
    assert_eq!(echo.hits(), 1);

    // Traefik's acme.json: resolver → Account + Certificates, mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&storage).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "acme.json mode");
    let json = stored(&storage);
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
    let static_yaml =
        static_config(&pebble, &storage, acme).replace(&pebble.directory_url(), &unreachable);
    let proxy = start_proxy(&pebble, &static_yaml, &dynamic, &echo).await;
    let (again, _) = wait_certificate(
        pebble.tls_port,
        "app.test.example",
        &root,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(again, leaf, "the stored certificate is served");
    assert!(!proxy.logs().contains("certificate obtained"));
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn tls_alpn01_issues_for_tls_domains_with_sans_and_an_rsa_key() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = "      keyType: RSA2048\n      tlsChallenge: {}";
    let dynamic = dynamic_config(
        "Host(`alpn.test.example`) || Host(`www.alpn.test.example`)",
        "{certResolver: le, domains: [{main: alpn.test.example, sans: [www.alpn.test.example]}]}",
    );
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, acme),
        &dynamic,
        &echo,
    )
    .await;
    let root = pebble.issuing_root();
    let (leaf, _) =
        wait_certificate(pebble.tls_port, "alpn.test.example", &root, ISSUE_TIMEOUT).await;
    let (san_leaf, status) = wait_certificate(
        pebble.tls_port,
        "www.alpn.test.example",
        &root,
        ISSUE_TIMEOUT,
    )
    .await;
    assert_eq!(
        leaf, san_leaf,
        "one certificate serves the main domain and its SAN"
    );
    assert!(status.contains(" 200"), "{status}");
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).unwrap();
    assert_eq!(
        parsed.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION
    );
    let json = stored(&storage);
    assert_eq!(
        json["le"]["Certificates"][0]["domain"]["sans"][0],
        "www.alpn.test.example"
    );
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn dns01_exec_provider_issues_a_wildcard() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    // lego's exec provider reads EXEC_PATH from the environment, which the proxy inherits.
    std::env::set_var("EXEC_PATH", pebble.dns_hook());
    // Propagation is checked against Pebble's fake DNS before validation is asked for.
    let acme = format!(
        "      keyType: EC384\n      dnsChallenge:\n        provider: exec\n        resolvers: [\"127.0.0.1:{}\"]",
        pebble.dns_port
    );
    let dynamic = dynamic_config(
        "HostRegexp(`^.+\\\\.wild\\\\.test\\\\.example$`)",
        "{certResolver: le, domains: [{main: \"*.wild.test.example\"}]}",
    );
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, &acme),
        &dynamic,
        &echo,
    )
    .await;
    let root = pebble.issuing_root();
    let (_, status) =
        wait_certificate(pebble.tls_port, "a.wild.test.example", &root, ISSUE_TIMEOUT).await;
    assert!(status.contains(" 200"), "{status}");
    wait_certificate(
        pebble.tls_port,
        "b.wild.test.example",
        &root,
        Duration::from_secs(5),
    )
    .await;
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn short_lived_certificate_is_renewed() {
    // 10-minute certificates with `certificatesDuration: 1` (hours): renewed within 20 minutes of expiry, so at once.
    let pebble = Pebble::start(PebbleOptions {
        validity: Some(600),
        ..PebbleOptions::default()
    })
    .await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme =
        "      keyType: EC256\n      certificatesDuration: 1\n      httpChallenge:\n        entryPoint: web";
    let static_yaml = static_config(&pebble, &storage, acme);
    let dynamic = dynamic_config("Host(`renew.test.example`)", "{certResolver: le}");
    let proxy = start_proxy(&pebble, &static_yaml, &dynamic, &echo).await;
    let root = pebble.issuing_root();
    let (first, _) =
        wait_certificate(pebble.tls_port, "renew.test.example", &root, ISSUE_TIMEOUT).await;
    stop(proxy).await;

    // At start the renewal check runs first: the stored certificate serves until its replacement is in.
    let proxy = start_proxy(&pebble, &static_yaml, &dynamic, &echo).await;
    let (served, _) = wait_certificate(
        pebble.tls_port,
        "renew.test.example",
        &root,
        Duration::from_secs(5),
    )
    .await;
    let renewed = viaduct_testkit::wait_until("the renewed certificate", ISSUE_TIMEOUT, || {
        let root = root.clone();
        let first = first.clone();
        async move {
            match pebble::verified_get(pebble.tls_port, "renew.test.example", &root).await {
                Ok((leaf, _)) if leaf != first => Ok(Some(leaf)),
                Ok(_) => Err("still the first certificate".to_string()),
                Err(e) => Err(e),
            }
        }
    })
    .await
    .unwrap();
    assert!(served == first || served == renewed);
    assert!(proxy.logs().contains("renewing certificate"));
    let json = stored(&storage);
    assert_eq!(
        json["le"]["Certificates"].as_array().unwrap().len(),
        1,
        "replaced, not added"
    );
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn bad_nonce_rejections_are_retried() {
    // Pebble's own default: 5% of nonces are rejected, and clients must retry.
    let pebble = Pebble::start(PebbleOptions {
        nonce_reject: 5,
        ..PebbleOptions::default()
    })
    .await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: web";
    let dynamic = r#"
http:
  routers:
    one:
      rule: "Host(`one.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
    two:
      rule: "Host(`two.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, acme),
        dynamic,
        &echo,
    )
    .await;
    let root = pebble.issuing_root();
    wait_certificate(pebble.tls_port, "one.test.example", &root, ISSUE_TIMEOUT).await;
    wait_certificate(pebble.tls_port, "two.test.example", &root, ISSUE_TIMEOUT).await;
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn http01_challenge_is_answered_ahead_of_user_routers() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: web";
    // A catch-all plain router on `web` at the highest priority would swallow the validation requests.
    let dynamic = r#"
http:
  routers:
    catchall:
      rule: "PathPrefix(`/`)"
      priority: 1000000
      entryPoints: [web]
      service: echo
    app:
      rule: "Host(`first.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, acme),
        dynamic,
        &echo,
    )
    .await;
    let root = pebble.issuing_root();
    wait_certificate(pebble.tls_port, "first.test.example", &root, ISSUE_TIMEOUT).await;
    // An unknown token is a 404 from the challenge handler, not the catch-all router.
    let client = viaduct_testkit::HttpClient::http1();
    let url = format!(
        "http://127.0.0.1:{}/.well-known/acme-challenge/unknown",
        pebble.http_port
    );
    let reply = client.get_host(&url, "first.test.example").await.unwrap();
    assert_eq!(reply.status, 404);
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble and traefik"]
async fn acme_json_moves_between_traefik_and_viaduct_both_ways() {
    let Some(traefik) = viaduct_testkit::ProxyKind::traefik() else {
        panic!("set TRAEFIK_BIN to Traefik's binary");
    };
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: web";
    let static_yaml = static_config(&pebble, &storage, acme);
    let unreachable = format!(
        "https://127.0.0.1:{}/dir",
        viaduct_testkit::free_port().unwrap()
    );
    let offline_yaml = static_yaml.replace(&pebble.directory_url(), &unreachable);
    let one = dynamic_config("Host(`traefik.test.example`)", "{certResolver: le}");
    let both = r#"
http:
  routers:
    one:
      rule: "Host(`traefik.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
    two:
      rule: "Host(`viaduct.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;
    let launch = |kind: viaduct_testkit::ProxyKind, static_yaml: &str, dynamic: &str| {
        Launch::new(kind)
            .static_yaml(static_yaml)
            .dynamic_yaml(dynamic)
            .var("echo", echo.url())
            .ready_port(pebble.http_port)
            .ready_port(pebble.tls_port)
    };
    let root = pebble.issuing_root();

    // Traefik orders and writes acme.json.
    let proxy = launch(traefik.clone(), &static_yaml, &one)
        .start()
        .await
        .unwrap();
    let (from_traefik, _) = wait_certificate(
        pebble.tls_port,
        "traefik.test.example",
        &root,
        ISSUE_TIMEOUT,
    )
    .await;
    stop(proxy).await;

    // Viaduct serves Traefik's certificate at once, then orders the second one with its own account.
    let proxy = launch(common::viaduct(), &static_yaml, both)
        .start()
        .await
        .unwrap();
    let (served, _) = wait_certificate(
        pebble.tls_port,
        "traefik.test.example",
        &root,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(served, from_traefik);
    let (from_viaduct, _) = wait_certificate(
        pebble.tls_port,
        "viaduct.test.example",
        &root,
        ISSUE_TIMEOUT,
    )
    .await;
    stop(proxy).await;
    let json = stored(&storage);
    assert!(
        json["le"]["Account"]["PrivateKey"].is_string(),
        "Traefik's account is kept"
    );
    assert_eq!(json["le"]["Certificates"].as_array().unwrap().len(), 2);

    // Traefik takes the file back and serves both, without the CA.
    let proxy = launch(traefik, &offline_yaml, both).start().await.unwrap();
    let (served, _) = wait_certificate(
        pebble.tls_port,
        "viaduct.test.example",
        &root,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(served, from_viaduct);
    let (served, _) = wait_certificate(
        pebble.tls_port,
        "traefik.test.example",
        &root,
        Duration::from_secs(5),
    )
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
#[ignore = "needs pebble"]
async fn external_account_binding_registers_with_a_ca_that_requires_it() {
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start(PebbleOptions {
        eab: Some(("kid-1".into(), key.into())),
        ..PebbleOptions::default()
    })
    .await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    let acme = format!(
        "      keyType: EC256\n      eab:\n        kid: kid-1\n        hmacEncoded: {key}\n      httpChallenge:\n        entryPoint: web"
    );
    let dynamic = dynamic_config("Host(`eab.test.example`)", "{certResolver: le}");
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, &acme),
        &dynamic,
        &echo,
    )
    .await;
    let root = pebble.issuing_root();
    wait_certificate(pebble.tls_port, "eab.test.example", &root, ISSUE_TIMEOUT).await;
    stop(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pebble"]
async fn a_failed_challenge_is_logged_with_the_domain_and_the_default_certificate_serves() {
    let pebble = Pebble::start(PebbleOptions::default()).await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = scratch.path().join("acme.json");
    // HTTP-01 answered on the TLS entry point: Pebble's validation on the plain port gets 404.
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: websecure";
    let dynamic = dynamic_config("Host(`fail.test.example`)", "{certResolver: le}");
    let proxy = start_proxy(
        &pebble,
        &static_config(&pebble, &storage, acme),
        &dynamic,
        &echo,
    )
    .await;
    proxy
        .wait_for_log("cannot obtain a certificate", ISSUE_TIMEOUT)
        .await
        .unwrap();
    let logs = proxy.logs();
    let line = logs
        .lines()
        .find(|line| line.contains("cannot obtain a certificate"))
        .unwrap();
    assert!(line.contains("fail.test.example"), "{line}");
    assert!(line.contains("retry_in") && line.contains("30s"), "{line}");
    assert!(
        line.contains("404") || line.contains("unauthorized"),
        "the CA's reason: {line}"
    );
    // Still served, with the default certificate.
    let root = pebble.issuing_root();
    let error = pebble::verified_get(pebble.tls_port, "fail.test.example", &root)
        .await
        .unwrap_err();
    assert!(
        error.contains("UnknownIssuer") || error.contains("invalid peer certificate"),
        "{error}"
    );
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
    let acme = "      keyType: EC256\n      httpChallenge:\n        entryPoint: web";
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
    let both = r#"
http:
  routers:
    first:
      rule: "Host(`first.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
    second:
      rule: "Host(`second.test.example`)"
      entryPoints: [websecure]
      service: echo
      tls: {certResolver: le}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;
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
