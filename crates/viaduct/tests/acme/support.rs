//! What the ACME end-to-end tests share: the static and dynamic configurations and the proxy's start and stop.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use viaduct_testkit::{EchoBackend, Launch, ProxyUnderTest};

use super::common;
use super::pebble::{wait_certificate, Pebble, PebbleOptions};

/// Issuance includes validation by Pebble and, after a failure, a retry 30 s later.
pub const ISSUE_TIMEOUT: Duration = Duration::from_secs(90);

/// The resolver's settings most tests use: an EC key, HTTP-01 on `web`.
pub const HTTP01: &str = "      keyType: EC256\n      httpChallenge:\n        entryPoint: web";

/// What an ACME test starts from: Pebble, the echo backend, and the resolver's storage file in
/// a scratch directory that lives as long as this.
pub struct Setup {
    pub pebble: Pebble,
    pub echo: EchoBackend,
    pub storage: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Setup {
    pub async fn start(options: PebbleOptions) -> Setup {
        let pebble = Pebble::start(options).await;
        let echo = EchoBackend::start("echo").await.unwrap();
        let scratch = tempfile::tempdir().unwrap();
        Setup {
            pebble,
            echo,
            storage: scratch.path().join("acme.json"),
            _scratch: scratch,
        }
    }

    /// The static configuration whose resolver `le` has the settings `acme` ([`static_config`]).
    pub fn static_config(&self, acme: &str) -> String {
        static_config(&self.pebble, &self.storage, acme)
    }

    /// Starts Viaduct with the resolver settings `acme` and the dynamic configuration `dynamic`.
    pub async fn start_proxy(&self, acme: &str, dynamic: &str) -> ProxyUnderTest {
        start_proxy(&self.pebble, &self.static_config(acme), dynamic, &self.echo).await
    }

    pub fn root(&self) -> CertificateDer<'static> {
        self.pebble.issuing_root()
    }

    /// Waits until `host` is served a certificate from Pebble (see [`wait_certificate`]).
    pub async fn wait_certificate(
        &self,
        host: &str,
        timeout: Duration,
    ) -> (CertificateDer<'static>, String) {
        wait_certificate(self.pebble.tls_port, host, &self.root(), timeout).await
    }
}

/// Entry points `web` (plain, HTTP-01) and `websecure` (TLS, TLS-ALPN-01) on the ports Pebble validates, and one
/// resolver `le` whose `acme` section is `acme` (YAML, 6-space indent, appended to the common settings).
pub fn static_config(pebble: &Pebble, storage: &Path, acme: &str) -> String {
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
pub fn dynamic_config(rule: &str, tls: &str) -> String {
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

/// One TLS router on `websecure` per host, each asking the resolver `le` for its certificate.
pub fn resolver_routers(hosts: &[&str]) -> String {
    let routers: String = hosts
        .iter()
        .map(|host| {
            let name = host.split('.').next().unwrap_or(host);
            format!(
                "    {name}:\n      rule: \"Host(`{host}`)\"\n      entryPoints: [websecure]\n      service: echo\n      tls: {{certResolver: le}}\n"
            )
        })
        .collect();
    common::routed_to(&routers, &["echo"])
}

/// Starts Viaduct.
pub async fn start_proxy(
    pebble: &Pebble,
    static_yaml: &str,
    dynamic: &str,
    echo: &EchoBackend,
) -> ProxyUnderTest {
    start_kind(common::viaduct(), pebble, static_yaml, dynamic, echo).await
}

/// Starts the proxy under test: Viaduct, or Traefik with `VIADUCT_E2E_PROXY=traefik` (for behaviour Traefik shares).
pub async fn start_proxy_under_test(
    pebble: &Pebble,
    static_yaml: &str,
    dynamic: &str,
    echo: &EchoBackend,
) -> ProxyUnderTest {
    start_kind(common::kind(), pebble, static_yaml, dynamic, echo).await
}

async fn start_kind(
    kind: viaduct_testkit::ProxyKind,
    pebble: &Pebble,
    static_yaml: &str,
    dynamic: &str,
    echo: &EchoBackend,
) -> ProxyUnderTest {
    Launch::new(kind)
        .static_yaml(static_yaml)
        .dynamic_yaml(dynamic)
        .var("echo", echo.url())
        .ready_port(pebble.http_port)
        .ready_port(pebble.tls_port)
        .start()
        .await
        .unwrap()
}

pub async fn stop(proxy: ProxyUnderTest) {
    proxy.sigterm().unwrap();
    proxy.wait_exit(Duration::from_secs(10)).await.unwrap();
}

pub fn stored(storage: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(storage).unwrap()).unwrap()
}
