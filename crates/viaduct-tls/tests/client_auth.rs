#![allow(clippy::unwrap_used)]

//! Client certificates: Go's five `clientAuthType`s over real handshakes.

mod support;

use rustls::HandshakeKind;
use support::{config_with, connect, connect_with, self_signed, Ca, Client, Leaf};
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
        self.runtime_with(client_auth_type, &TlsShared::new().unwrap())
    }

    fn runtime_with(
        &self,
        client_auth_type: &str,
        shared: &TlsShared,
    ) -> (TlsRuntime, Vec<TlsIssue>) {
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
        TlsRuntime::build(Some(&config), &routes, shared)
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
    let seen_by_server = connect(&runtime, &with_cert(Some(&good)))
        .await
        .server
        .unwrap();
    assert_eq!(seen_by_server.peer_certs[0], good.der);
    assert!(connect(&runtime, &with_cert(None)).await.failed());
    let foreign = setup.untrusted.client("mallory");
    assert!(connect(&runtime, &with_cert(Some(&foreign))).await.failed());
    assert!(connect(&runtime, &with_cert(Some(&self_signed(&["eve"]))))
        .await
        .failed());

    // Other hosts keep the default options: no client certificate asked.
    connect(&runtime, &Client::sni("open.example.com"))
        .await
        .ok();
}

#[tokio::test]
async fn ca_files_without_a_type_require_and_verify() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("");
    assert!(issues.is_empty(), "{issues:?}");
    assert!(connect(&runtime, &with_cert(None)).await.failed());
    connect(&runtime, &with_cert(Some(&setup.trusted.client("alice"))))
        .await
        .ok();
}

#[tokio::test]
async fn verify_if_given_accepts_no_certificate_but_checks_one() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("VerifyClientCertIfGiven");
    assert!(issues.is_empty(), "{issues:?}");

    connect(&runtime, &with_cert(None)).await.ok();
    connect(&runtime, &with_cert(Some(&setup.trusted.client("alice"))))
        .await
        .ok();
    let foreign = setup.untrusted.client("mallory");
    assert!(connect(&runtime, &with_cert(Some(&foreign))).await.failed());
}

#[tokio::test]
async fn require_any_accepts_a_self_signed_client_but_not_none() {
    let setup = Setup::new();
    let (runtime, issues) = setup.runtime("RequireAnyClientCert");
    assert!(issues.is_empty(), "{issues:?}");

    let stranger = self_signed(&["stranger"]);
    let seen_by_server = connect(&runtime, &with_cert(Some(&stranger)))
        .await
        .server
        .unwrap();
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
    let seen_by_server = connect(&runtime, &with_cert(Some(&stranger)))
        .await
        .server
        .unwrap();
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
    config.options.insert(
        "noca@file".to_string(),
        auth(Vec::new(), "RequireAndVerifyClientCert"),
    );
    config.options.insert(
        "noca2@file".to_string(),
        auth(Vec::new(), "VerifyClientCertIfGiven"),
    );
    config.options.insert(
        "typo@file".to_string(),
        auth(Vec::new(), "RequireClientCert"),
    );
    config.options.insert(
        "badca@file".to_string(),
        auth(
            vec!["/nonexistent/viaduct/ca.pem".to_string()],
            "RequireAndVerifyClientCert",
        ),
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

#[tokio::test]
async fn a_session_never_resumes_past_a_stricter_client_auth_policy() {
    let setup = Setup::new();
    let shared = TlsShared::new().unwrap();
    let client = with_cert(None);
    let config = client.config();

    let (open, _) = setup.runtime_with("NoClientCert", &shared);
    connect_with(&open, &client, config.clone()).await.ok();
    let resumed = connect_with(&open, &client, config.clone()).await.ok();
    assert_eq!(resumed.kind, Some(HandshakeKind::Resumed));

    // A reload that requires client certificates for the host must not honour the earlier session.
    let (strict, _) = setup.runtime_with("RequireAndVerifyClientCert", &shared);
    assert!(connect_with(&strict, &client, config).await.failed());

    // Under an unchanged policy, a verified client resumes across reloads.
    let verified = with_cert(Some(&setup.trusted.client("alice")));
    let config = verified.config();
    connect_with(&strict, &verified, config.clone()).await.ok();
    let (reloaded, _) = setup.runtime_with("RequireAndVerifyClientCert", &shared);
    let resumed = connect_with(&reloaded, &verified, config).await;
    assert_eq!(resumed.server.unwrap().kind, Some(HandshakeKind::Resumed));
}
