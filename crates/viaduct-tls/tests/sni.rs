#![allow(clippy::unwrap_used)]

//! Certificate selection: SNI, wildcards, defaults, sniStrict, and broken or duplicate entries.

mod support;

use std::collections::BTreeMap;

use support::{
    common_name_only, config_with, connect, connect_at, expired, self_signed, Ca, Client,
};
use viaduct_config::{StoreCertificate, TlsCertificate, TlsConfig, TlsOptions, TlsStore};
use viaduct_tls::{TlsIssue, TlsRuntime, TlsShared};

fn common_name(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    cn.as_str().unwrap().to_string()
}

fn build(config: &TlsConfig, shared: &TlsShared) -> (TlsRuntime, Vec<TlsIssue>) {
    TlsRuntime::build(Some(config), &[], shared)
}

#[tokio::test]
async fn sni_picks_the_matching_certificate() {
    let ca = Ca::new("test ca");
    let a = ca.server(&["a.example.com"]);
    let b = ca.server(&["b.example.com", "other.example.org"]);
    let (runtime, issues) = build(&config_with(&[&a, &b]), &TlsShared::new().unwrap());
    assert!(issues.is_empty(), "{issues:?}");

    assert_eq!(
        connect(&runtime, &Client::sni("a.example.com"))
            .await
            .served_leaf(),
        a.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("b.example.com"))
            .await
            .served_leaf(),
        b.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("OTHER.example.org"))
            .await
            .served_leaf(),
        b.der
    );
}

#[tokio::test]
async fn wildcard_covers_one_label_and_exact_names_win() {
    let wildcard = self_signed(&["*.example.com"]);
    let exact = self_signed(&["a.example.com"]);
    let (runtime, issues) = build(
        &config_with(&[&wildcard, &exact]),
        &TlsShared::new().unwrap(),
    );
    assert!(issues.is_empty(), "{issues:?}");

    assert_eq!(
        connect(&runtime, &Client::sni("x.example.com"))
            .await
            .served_leaf(),
        wildcard.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("a.example.com"))
            .await
            .served_leaf(),
        exact.der
    );
    let deeper = connect(&runtime, &Client::sni("y.x.example.com"))
        .await
        .served_leaf();
    assert_eq!(common_name(&deeper), "TRAEFIK DEFAULT CERT");
    let apex = connect(&runtime, &Client::sni("example.com"))
        .await
        .served_leaf();
    assert_eq!(common_name(&apex), "TRAEFIK DEFAULT CERT");
}

#[tokio::test]
async fn no_sni_or_unknown_sni_gets_the_generated_default() {
    let leaf = self_signed(&["a.example.com"]);
    let shared = TlsShared::new().unwrap();
    let (runtime, _) = build(&config_with(&[&leaf]), &shared);

    let no_sni = connect(&runtime, &Client::no_sni()).await.served_leaf();
    assert_eq!(common_name(&no_sni), "TRAEFIK DEFAULT CERT");
    let unknown = connect(&runtime, &Client::sni("unknown.example.net"))
        .await
        .served_leaf();
    assert_eq!(unknown, no_sni);

    // Without any TLS configuration, too; and a reload keeps the same generated certificate.
    let (bare, issues) = TlsRuntime::build(None, &[], &shared);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(
        connect(&bare, &Client::no_sni()).await.served_leaf(),
        no_sni
    );
}

#[tokio::test]
async fn store_default_certificate_replaces_the_generated_one() {
    let leaf = self_signed(&["a.example.com"]);
    let fallback = self_signed(&["fallback.example.com"]);
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("default.crt");
    let key_path = dir.path().join("default.key");
    std::fs::write(&cert_path, &fallback.cert_pem).unwrap();
    std::fs::write(&key_path, &fallback.key_pem).unwrap();
    let mut config = config_with(&[&leaf]);
    config.stores.insert(
        "default".to_string(),
        TlsStore {
            default_certificate: Some(StoreCertificate {
                cert_file: cert_path.display().to_string(),
                key_file: key_path.display().to_string(),
            }),
            default_generated_cert: None,
        },
    );
    let (runtime, issues) = build(&config, &TlsShared::new().unwrap());
    assert!(issues.is_empty(), "{issues:?}");

    assert_eq!(
        connect(&runtime, &Client::no_sni()).await.served_leaf(),
        fallback.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("nope.example.com"))
            .await
            .served_leaf(),
        fallback.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("a.example.com"))
            .await
            .served_leaf(),
        leaf.der
    );
}

#[tokio::test]
async fn sni_strict_refuses_unknown_and_missing_sni() {
    let leaf = self_signed(&["a.example.com", "*.wild.example.com"]);
    let mut config = config_with(&[&leaf]);
    config.options.insert(
        "default".to_string(),
        TlsOptions {
            sni_strict: true,
            ..TlsOptions::default()
        },
    );
    let (runtime, issues) = build(&config, &TlsShared::new().unwrap());
    assert!(issues.is_empty(), "{issues:?}");

    assert!(runtime.server_config(Some("unknown.example.com")).is_none());
    assert!(runtime.server_config(None).is_none());
    assert!(connect(&runtime, &Client::sni("unknown.example.com"))
        .await
        .failed());
    assert!(connect(&runtime, &Client::no_sni()).await.failed());
    assert_eq!(
        connect(&runtime, &Client::sni("a.example.com"))
            .await
            .served_leaf(),
        leaf.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("x.wild.example.com"))
            .await
            .served_leaf(),
        leaf.der
    );
}

#[tokio::test]
async fn a_bad_certificate_entry_is_reported_and_the_others_load() {
    let good = self_signed(&["good.example.com"]);
    let other = self_signed(&["other.example.com"]);
    let mut config = config_with(&[&good]);
    config.certificates.push(TlsCertificate {
        cert_file: "/nonexistent/viaduct/cert.pem".to_string(),
        key_file: "/nonexistent/viaduct/key.pem".to_string(),
        stores: Vec::new(),
    });
    // A certificate with another certificate's key.
    config.certificates.push(TlsCertificate {
        cert_file: other.cert_pem.clone(),
        key_file: good.key_pem.clone(),
        stores: Vec::new(),
    });
    config.certificates.push(TlsCertificate {
        cert_file: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
            .to_string(),
        key_file: good.key_pem.clone(),
        stores: Vec::new(),
    });
    config.certificates.push(other.entry());
    let (runtime, issues) = build(&config, &TlsShared::new().unwrap());

    let errors: Vec<_> = issues.iter().filter(|issue| issue.is_error).collect();
    assert_eq!(errors.len(), 3, "{issues:?}");
    assert_eq!(errors[0].object, "tls.certificates[1]");
    assert!(
        errors[0].message.contains("/nonexistent/viaduct/cert.pem"),
        "{}",
        errors[0].message
    );
    assert_eq!(errors[1].object, "tls.certificates[2]");
    assert_eq!(errors[2].object, "tls.certificates[3]");
    assert!(
        !errors[2].message.contains("not base64"),
        "inline PEM is not echoed"
    );

    assert_eq!(
        connect(&runtime, &Client::sni("good.example.com"))
            .await
            .served_leaf(),
        good.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("other.example.com"))
            .await
            .served_leaf(),
        other.der
    );
}

#[tokio::test]
async fn duplicate_names_keep_the_first_certificate() {
    let first = self_signed(&["dup.example.com"]);
    let second = self_signed(&["dup.example.com", "second.example.com"]);
    let (runtime, issues) = build(&config_with(&[&first, &second]), &TlsShared::new().unwrap());
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(!issues[0].is_error);
    assert_eq!(issues[0].object, "tls.certificates[1]");
    assert!(issues[0].message.contains("dup.example.com"));

    assert_eq!(
        connect(&runtime, &Client::sni("dup.example.com"))
            .await
            .served_leaf(),
        first.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("second.example.com"))
            .await
            .served_leaf(),
        second.der
    );
}

#[tokio::test]
async fn expired_and_common_name_only_certificates_still_serve() {
    let old = expired(&["old.example.com"]);
    let cn_only = common_name_only("cn.example.com");
    let (runtime, issues) = build(&config_with(&[&old, &cn_only]), &TlsShared::new().unwrap());
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].object, "tls.certificates[0]");
    assert!(!issues[0].is_error);

    assert_eq!(
        connect(&runtime, &Client::sni("old.example.com"))
            .await
            .served_leaf(),
        old.der
    );
    assert_eq!(
        connect(&runtime, &Client::sni("cn.example.com"))
            .await
            .served_leaf(),
        cn_only.der
    );
}

#[tokio::test]
async fn stores_other_than_default_are_reported_and_ignored() {
    let leaf = self_signed(&["a.example.com"]);
    let mut config = config_with(&[&leaf]);
    config.certificates[0].stores = vec!["default".to_string(), "extra".to_string()];
    config.stores = BTreeMap::from([("extra".to_string(), TlsStore::default())]);
    let (runtime, issues) = build(&config, &TlsShared::new().unwrap());
    let objects: Vec<_> = issues.iter().map(|issue| issue.object.as_str()).collect();
    assert_eq!(
        objects,
        ["tls.certificates[0]", "tls.stores.extra"],
        "{issues:?}"
    );
    assert!(issues.iter().all(|issue| !issue.is_error));

    // Certificates are forced into the default store.
    assert_eq!(
        connect(&runtime, &Client::sni("a.example.com"))
            .await
            .served_leaf(),
        leaf.der
    );
}

#[tokio::test]
async fn without_sni_the_local_address_selects_an_ip_certificate() {
    let by_ip = self_signed(&["127.0.0.1", "::1"]);
    let by_name = self_signed(&["a.example.com"]);
    let mut config = config_with(&[&by_ip, &by_name]);
    config.options.insert(
        "default".to_string(),
        TlsOptions {
            sni_strict: true,
            ..TlsOptions::default()
        },
    );
    let (runtime, issues) = build(&config, &TlsShared::new().unwrap());
    assert!(issues.is_empty(), "{issues:?}");

    let v4 = "127.0.0.1".parse().unwrap();
    let v6 = "::1".parse().unwrap();
    let other = "127.0.0.2".parse().unwrap();
    let no_sni = Client::no_sni();
    assert_eq!(
        connect_at(&runtime, &no_sni, v4).await.served_leaf(),
        by_ip.der
    );
    assert_eq!(
        connect_at(&runtime, &no_sni, v6).await.served_leaf(),
        by_ip.der
    );
    // Strict SNI still refuses an address that no certificate names, and SNI wins over the address.
    assert!(connect_at(&runtime, &no_sni, other).await.failed());
    let named = Client::sni("a.example.com");
    assert_eq!(
        connect_at(&runtime, &named, v4).await.served_leaf(),
        by_name.der
    );
    assert!(connect_at(&runtime, &Client::sni("nope.example.com"), v4)
        .await
        .failed());
}
