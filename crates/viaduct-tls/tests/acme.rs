#![allow(clippy::unwrap_used)]

//! What ACME resolvers share with the TLS store: obtained certificates join the next runtime (behind
//! `tls.certificates` entries for the same names), and pending TLS-ALPN-01 and HTTP-01 challenges are answered.

mod support;

use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use support::{config_with, connect, Ca, Client, Leaf};
use viaduct_tls::{AcmeCertificate, TlsRuntime, TlsShared, ACME_TLS_ALPN};

fn certified(leaf: &Leaf) -> Arc<CertifiedKey> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(CertifiedKey::from_der(vec![leaf.der.clone()], key, &provider).unwrap())
}

#[tokio::test]
async fn obtained_certificates_are_served_from_the_next_runtime() {
    let ca = Ca::new("acme ca");
    let obtained = ca.server(&["app.example.com", "*.wild.example.com"]);
    let shared = TlsShared::new().unwrap();
    let before = TlsRuntime::build(None, &[], &shared).0;
    shared.acme().set_certificates(
        "le",
        vec![AcmeCertificate {
            names: vec!["app.example.com".into(), "*.wild.example.com".into()],
            key: certified(&obtained),
        }],
    );
    let after = TlsRuntime::build(None, &[], &shared).0;

    let client = Client::sni("app.example.com");
    assert_ne!(connect(&before, &client).await.served_leaf(), obtained.der);
    assert_eq!(connect(&after, &client).await.served_leaf(), obtained.der);
    let wildcard = Client::sni("x.wild.example.com");
    assert_eq!(connect(&after, &wildcard).await.served_leaf(), obtained.der);
}

#[tokio::test]
async fn a_configured_certificate_wins_over_an_obtained_one() {
    let ca = Ca::new("acme ca");
    let configured = ca.server(&["app.example.com"]);
    let obtained = ca.server(&["app.example.com"]);
    let shared = TlsShared::new().unwrap();
    shared.acme().set_certificates(
        "le",
        vec![AcmeCertificate {
            names: vec!["app.example.com".into()],
            key: certified(&obtained),
        }],
    );
    let (runtime, issues) = TlsRuntime::build(Some(&config_with(&[&configured])), &[], &shared);
    assert!(issues.is_empty(), "{issues:?}");
    let served = connect(&runtime, &Client::sni("app.example.com"))
        .await
        .served_leaf();
    assert_eq!(served, configured.der);
}

#[test]
fn tls_alpn_challenges_are_answered_only_while_pending() {
    let ca = Ca::new("acme ca");
    let challenge = ca.server(&["app.example.com"]);
    let shared = TlsShared::new().unwrap();
    let runtime = TlsRuntime::build(None, &[], &shared).0;
    let acme = runtime.acme();
    assert!(acme
        .alpn_challenge_config(Some("app.example.com"))
        .is_none());
    acme.add_alpn_certificate("App.Example.com", certified(&challenge));
    let config = acme.alpn_challenge_config(Some("app.example.com")).unwrap();
    assert_eq!(config.alpn_protocols, vec![ACME_TLS_ALPN.to_vec()]);
    assert!(acme
        .alpn_challenge_config(Some("other.example.com"))
        .is_none());
    assert!(acme.alpn_challenge_config(None).is_none());
    acme.remove_alpn_certificate("app.example.com");
    assert!(acme
        .alpn_challenge_config(Some("app.example.com"))
        .is_none());
}

#[test]
fn http_challenges_are_answered_on_the_challenge_entry_points_only() {
    let shared = TlsShared::new().unwrap();
    let acme = shared.acme();
    let path = "/.well-known/acme-challenge/tok";
    acme.add_http_token("tok", "tok.thumb");
    assert_eq!(
        acme.http_challenge("web", path),
        None,
        "no entry point answers yet"
    );
    acme.set_http_entry_points(["web".to_string()]);
    assert_eq!(
        acme.http_challenge("web", path),
        Some(Some("tok.thumb".into()))
    );
    assert_eq!(acme.http_challenge("websecure", path), None);
    assert_eq!(acme.http_challenge("web", "/other"), None);
    assert_eq!(
        acme.http_challenge("web", "/.well-known/acme-challenge/unknown"),
        Some(None)
    );
    acme.remove_http_token("tok");
    assert_eq!(acme.http_challenge("web", path), Some(None));
}

#[test]
fn configured_certificates_tell_which_names_need_no_order() {
    let ca = Ca::new("acme ca");
    let exact = ca.server(&["app.example.com"]);
    let wildcard = ca.server(&["*.wild.example.com"]);
    let obtained = ca.server(&["acme.example.com"]);
    let shared = TlsShared::new().unwrap();
    shared.acme().set_certificates(
        "le",
        vec![AcmeCertificate {
            names: vec!["acme.example.com".into()],
            key: certified(&obtained),
        }],
    );
    let (runtime, _) = TlsRuntime::build(Some(&config_with(&[&exact, &wildcard])), &[], &shared);
    assert!(runtime.has_configured_certificate("APP.example.com"));
    assert!(runtime.has_configured_certificate("x.wild.example.com"));
    assert!(runtime.has_configured_certificate("*.wild.example.com"));
    assert!(!runtime.has_configured_certificate("*.example.com"));
    assert!(!runtime.has_configured_certificate("a.b.wild.example.com"));
    assert!(
        !runtime.has_configured_certificate("acme.example.com"),
        "ACME's own certificates are not configured ones"
    );
}

#[tokio::test]
async fn default_generated_cert_is_served_once_obtained() {
    let ca = Ca::new("acme ca");
    let generated = ca.server(&["default.example.com"]);
    let shared = TlsShared::new().unwrap();
    let mut config = config_with(&[]);
    config.stores.insert(
        "default".into(),
        viaduct_config::TlsStore {
            default_certificate: None,
            default_generated_cert: Some(viaduct_config::GeneratedCert {
                resolver: "le".into(),
                domain: Some(viaduct_config::Domain {
                    main: "default.example.com".into(),
                    sans: vec![],
                }),
            }),
        },
    );
    let (before, issues) = TlsRuntime::build(Some(&config), &[], &shared);
    assert!(issues.is_empty(), "{issues:?}");
    let client = Client::sni("unknown.example.com");
    assert_ne!(connect(&before, &client).await.served_leaf(), generated.der);
    shared.acme().set_certificates(
        "le",
        vec![AcmeCertificate {
            names: vec!["default.example.com".into()],
            key: certified(&generated),
        }],
    );
    let after = TlsRuntime::build(Some(&config), &[], &shared).0;
    assert_eq!(connect(&after, &client).await.served_leaf(), generated.der);
}
