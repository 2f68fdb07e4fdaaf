#![allow(clippy::unwrap_used)]

//! Client certificates: Go's five `clientAuthType`s over real handshakes.

mod support;

use support::{config_with, connect, self_signed, Ca, Client, Leaf};
use viaduct_config::{ClientAuth, TlsConfig, TlsOptions};
use viaduct_tls::{TlsIssue, TlsRoute, TlsRuntime, TlsShared};

struct Setup {
    server: Leaf,
    trusted: Ca,
    untrusted: Ca,
}

impl Setup {
    fn new() -> Setup {
        let trusted = Ca::new("trusted client ca");
        Setup {
            server: trusted.server(&["mtls.example.com", "open.example.com"]),
            untrusted: Ca::new("other ca"),
            trusted,
        }
    }

    /// `mtls.example.com` uses `mtls@file` with `client_auth_type` and the trusted CA (inline PEM).
    fn runtime(&self, client_auth_type: &str) -> (TlsRuntime, Vec<TlsIssue>) {
        let mut config: TlsConfig = config_with(&[&self.server]);
        config.options.insert(
            "mtls@file".to_string(),
            TlsOptions {
                client_auth: Some(ClientAuth {
                    ca_files: vec![self.trusted.cert_pem.clone()],
                    client_auth_type: client_auth_type.to_string(),
                }),
                ..TlsOptions::default()
            },
        );
        let routes = [TlsRoute {
            hosts: vec!["mtls.example.com".to_string()],
            options: "mtls@file".to_string(),
        }];
        TlsRuntime::build(Some(&config), &routes, &TlsShared::new().unwrap())
    }
}

fn with_cert(leaf: Option<&Leaf>) -> Client {
    Client {
        client_cert: leaf.cloned(),
        ..Client::sni("mtls.example.com")
    }
}

#[tokio::test]
async fn require_and_verify_accepts_only_ca_signed_clients() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("RequireAndVerifyClientCert");
    assert!(issues.is_empty(), "{issues:?}");

    let good = setup.trusted.client("alice");
    let seen_by_server = connect(&runtime, &with_cert(Some(&good))).await.server.unwrap();
    assert_eq!(seen_by_server.peer_certs[0], good.der);
    assert!(connect(&runtime, &with_cert(None)).await.failed());
    let foreign = setup.untrusted.client("mallory");
    assert!(connect(&runtime, &with_cert(Some(&foreign))).await.failed());
    assert!(connect(&runtime, &with_cert(Some(&self_signed(&["eve"])))).await.failed());

    // Other hosts keep the default options: no client certificate asked.
    connect(&runtime, &Client::sni("open.example.com")).await.ok();
}

#[tokio::test]
async fn ca_files_without_a_type_require_and_verify() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("");
    assert!(issues.is_empty(), "{issues:?}");
    assert!(connect(&runtime, &with_cert(None)).await.failed());
    connect(&runtime, &with_cert(Some(&setup.trusted.client("alice")))).await.ok();
}

#[tokio::test]
async fn verify_if_given_accepts_no_certificate_but_checks_one() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("VerifyClientCertIfGiven");
    assert!(issues.is_empty(), "{issues:?}");

    connect(&runtime, &with_cert(None)).await.ok();
    connect(&runtime, &with_cert(Some(&setup.trusted.client("alice")))).await.ok();
    let foreign = setup.untrusted.client("mallory");
    assert!(connect(&runtime, &with_cert(Some(&foreign))).await.failed());
}

#[tokio::test]
async fn require_any_accepts_a_self_signed_client_but_not_none() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("RequireAnyClientCert");
    assert!(issues.is_empty(), "{issues:?}");

    let stranger = self_signed(&["stranger"]);
    let seen_by_server = connect(&runtime, &with_cert(Some(&stranger))).await.server.unwrap();
    assert_eq!(seen_by_server.peer_certs[0], stranger.der);
    assert!(connect(&runtime, &with_cert(None)).await.failed());
}

#[tokio::test]
async fn request_accepts_anything_and_nothing() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("RequestClientCert");
    assert!(issues.is_empty(), "{issues:?}");

    connect(&runtime, &with_cert(None)).await.ok();
    let stranger = self_signed(&["stranger"]);
    let seen_by_server = connect(&runtime, &with_cert(Some(&stranger))).await.server.unwrap();
    assert_eq!(seen_by_server.peer_certs[0], stranger.der);
}

#[tokio::test]
async fn no_client_cert_asks_for_nothing() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("NoClientCert");
    assert!(issues.is_empty(), "{issues:?}");
    let seen_by_server = connect(&runtime, &with_cert(Some(&setup.trusted.client("alice"))))
        .await
        .server
        .unwrap();
    assert!(seen_by_server.peer_certs.is_empty());
}

#[tokio::test]
async fn verification_without_ca_files_or_unknown_types_are_errors() {
    let leaf = self_signed(&["a.example.com"]);
    let mut config = config_with(&[&leaf]);
    let auth = |ca_files: Vec<String>, kind: &str| TlsOptions {
        client_auth: Some(ClientAuth {
            ca_files,
            client_auth_type: kind.to_string(),
        }),
        ..TlsOptions::default()
    };
    config.options.insert("noca@file".to_string(), auth(Vec::new(), "RequireAndVerifyClientCert"));
    config.options.insert("noca2@file".to_string(), auth(Vec::new(), "VerifyClientCertIfGiven"));
    config.options.insert("typo@file".to_string(), auth(Vec::new(), "RequireClientCert"));
    config.options.insert(
        "badca@file".to_string(),
        auth(vec!["/nonexistent/viaduct/ca.pem".to_string()], "RequireAndVerifyClientCert"),
    );
    let (runtime, issues) = TlsRuntime::build(Some(&config), &[], &TlsShared::new().unwrap());
    let objects: Vec<_> = issues.iter().map(|issue| issue.object.as_str()).collect();
    assert_eq!(
        objects,
        [
            "tls.options.badca@file.clientAuth.caFiles[0]",
            "tls.options.noca2@file.clientAuth.caFiles",
            "tls.options.noca@file.clientAuth.caFiles",
            "tls.options.typo@file.clientAuth.clientAuthType",
        ],
        "{issues:?}"
    );
    assert!(issues.iter().all(|issue| issue.is_error));
    assert!(issues[0].message.contains("/nonexistent/viaduct/ca.pem"));
    for name in ["noca@file", "noca2@file", "typo@file", "badca@file"] {
        assert!(!runtime.has_options(name), "{name}");
    }
}
