#![allow(clippy::unwrap_used)]

//! TLS options: versions, cipher suites, curves, ALPN, per-host selection and session resumption.

mod support;

use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::{HandshakeKind, ProtocolVersion};
use support::{config_with, connect, connect_with, self_signed, Client, Leaf};
use viaduct_config::{TlsConfig, TlsOptions};
use viaduct_tls::{TlsIssue, TlsRoute, TlsRuntime, TlsShared};

const HOSTS: [&str; 4] = [
    "a.example.com",
    "b.example.com",
    "*.old.example.com",
    "c.example.com",
];

fn leaf() -> Leaf {
    self_signed(&HOSTS)
}

/// A configuration with one certificate for [`HOSTS`] and `options`.
fn with_options(leaf: &Leaf, options: &[(&str, TlsOptions)]) -> TlsConfig {
    let mut config = config_with(&[leaf]);
    for (name, value) in options {
        config.options.insert(name.to_string(), value.clone());
    }
    config
}

fn build(config: &TlsConfig, routes: &[TlsRoute]) -> (TlsRuntime, Vec<TlsIssue>) {
    TlsRuntime::build(Some(config), routes, &TlsShared::new().unwrap())
}

fn route(hosts: &[&str], options: &str) -> TlsRoute {
    TlsRoute {
        hosts: hosts.iter().map(|host| host.to_string()).collect(),
        options: options.to_string(),
    }
}

fn version(min: &str, max: &str) -> TlsOptions {
    TlsOptions {
        min_version: min.to_string(),
        max_version: max.to_string(),
        ..TlsOptions::default()
    }
}

fn tls12_only(sni: &str) -> Client {
    Client {
        versions: vec![&rustls::version::TLS12],
        ..Client::sni(sni)
    }
}

fn tls13_only(sni: &str) -> Client {
    Client {
        versions: vec![&rustls::version::TLS13],
        ..Client::sni(sni)
    }
}

#[tokio::test]
async fn defaults_offer_tls13_and_12_with_h2_first() {
    let leaf = leaf();
    let (runtime, issues) = build(&config_with(&[&leaf]), &[]);
    assert!(issues.is_empty(), "{issues:?}");

    let client = Client {
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..Client::sni("a.example.com")
    };
    let seen = connect(&runtime, &client).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
    let seen = connect(&runtime, &tls12_only("a.example.com")).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_2));
    let config = runtime.server_config(Some("a.example.com")).unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert_eq!(config.max_early_data_size, 0);
}

#[tokio::test]
async fn min_version_tls13_refuses_a_tls12_client() {
    let leaf = leaf();
    let config = with_options(&leaf, &[("default", version("VersionTLS13", ""))]);
    let (runtime, issues) = build(&config, &[]);
    assert!(issues.is_empty(), "{issues:?}");

    assert!(connect(&runtime, &tls12_only("a.example.com"))
        .await
        .failed());
    let seen = connect(&runtime, &Client::sni("a.example.com")).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn max_version_tls12_caps_the_protocol() {
    let leaf = leaf();
    let config = with_options(&leaf, &[("default", version("", "VersionTLS12"))]);
    let (runtime, issues) = build(&config, &[]);
    assert!(issues.is_empty(), "{issues:?}");

    let seen = connect(&runtime, &Client::sni("a.example.com")).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_2));
    assert!(connect(&runtime, &tls13_only("a.example.com"))
        .await
        .failed());
}

#[tokio::test]
async fn old_min_versions_are_raised_and_bad_versions_rejected() {
    let leaf = leaf();
    let config = with_options(
        &leaf,
        &[
            ("old@file", version("VersionTLS10", "")),
            ("typo@file", version("VersionTLS14", "")),
            ("empty@file", version("", "VersionTLS11")),
        ],
    );
    let (runtime, issues) = build(&config, &[]);
    let warning = issues
        .iter()
        .find(|issue| issue.object == "tls.options.old@file.minVersion");
    assert!(!warning.unwrap().is_error, "{issues:?}");
    let errors: Vec<_> = issues
        .iter()
        .filter(|issue| issue.is_error)
        .map(|issue| issue.object.as_str())
        .collect();
    assert_eq!(
        errors,
        [
            "tls.options.empty@file.maxVersion",
            "tls.options.typo@file.minVersion"
        ],
        "{issues:?}"
    );
    assert!(runtime.has_options("old@file"));
    assert!(!runtime.has_options("typo@file"));
    assert!(!runtime.has_options("empty@file"));
    assert!(!runtime.has_options("missing@file"));
    assert!(runtime.has_options(""));
    assert!(runtime.has_options("default"));
}

#[tokio::test]
async fn cipher_suites_map_go_names() {
    let leaf = leaf();
    let options = TlsOptions {
        max_version: "VersionTLS12".to_string(),
        cipher_suites: vec![
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string(),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".to_string(),
            "TLS_AES_128_GCM_SHA256".to_string(),
        ],
        ..TlsOptions::default()
    };
    let (runtime, issues) = build(&with_options(&leaf, &[("default", options)]), &[]);
    assert!(issues.is_empty(), "{issues:?}");

    let seen = connect(&runtime, &Client::sni("a.example.com")).await.ok();
    assert_eq!(
        seen.suite,
        Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
    );
    let client = Client {
        suites: Some(vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        ..Client::sni("a.example.com")
    };
    assert!(connect(&runtime, &client).await.failed());
}

#[tokio::test]
async fn tls13_suites_stay_on_whatever_cipher_suites_say() {
    let leaf = leaf();
    let options = TlsOptions {
        cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_string()],
        ..TlsOptions::default()
    };
    let (runtime, issues) = build(&with_options(&leaf, &[("default", options)]), &[]);
    assert!(issues.is_empty(), "{issues:?}");
    let client = Client {
        suites: Some(vec![cipher_suite::TLS13_CHACHA20_POLY1305_SHA256]),
        ..tls13_only("a.example.com")
    };
    let seen = connect(&runtime, &client).await.ok();
    assert_eq!(
        seen.suite,
        Some(cipher_suite::TLS13_CHACHA20_POLY1305_SHA256)
    );
}

#[tokio::test]
async fn unsupported_cipher_suites_invalidate_the_option_set() {
    let leaf = leaf();
    let options = TlsOptions {
        cipher_suites: vec![
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string(),
            "TLS_RSA_WITH_AES_128_CBC_SHA".to_string(),
            "TLS_NOT_A_SUITE".to_string(),
        ],
        ..TlsOptions::default()
    };
    let (runtime, issues) = build(&with_options(&leaf, &[("legacy@file", options)]), &[]);
    assert_eq!(issues.len(), 2, "{issues:?}");
    for issue in &issues {
        assert!(issue.is_error);
        assert_eq!(issue.object, "tls.options.legacy@file.cipherSuites");
    }
    assert!(issues[0].message.contains("TLS_RSA_WITH_AES_128_CBC_SHA"));
    assert!(issues[0].message.contains("not supported"));
    assert!(issues[1].message.contains("TLS_NOT_A_SUITE"));
    assert!(!runtime.has_options("legacy@file"));
}

#[tokio::test]
async fn curve_preferences_restrict_key_exchange() {
    let leaf = leaf();
    let options = TlsOptions {
        curve_preferences: vec!["secp384r1".to_string(), "CurveP256".to_string()],
        ..TlsOptions::default()
    };
    let (runtime, issues) = build(&with_options(&leaf, &[("default", options)]), &[]);
    assert!(issues.is_empty(), "{issues:?}");

    let x25519_only = Client {
        kx_groups: Some(vec![kx_group::X25519]),
        ..Client::sni("a.example.com")
    };
    assert!(connect(&runtime, &x25519_only).await.failed());
    let p384 = Client {
        kx_groups: Some(vec![kx_group::X25519, kx_group::SECP384R1]),
        ..Client::sni("a.example.com")
    };
    connect(&runtime, &p384).await.ok();
}

#[tokio::test]
async fn unsupported_curves_are_errors() {
    let leaf = leaf();
    let options = |curve: &str| TlsOptions {
        curve_preferences: vec!["X25519".to_string(), curve.to_string()],
        ..TlsOptions::default()
    };
    let config = with_options(
        &leaf,
        &[
            ("p521@file", options("CurveP521")),
            ("rfc@file", options("secp521r1")),
            ("typo@file", options("P999")),
        ],
    );
    let (runtime, issues) = build(&config, &[]);
    assert_eq!(issues.len(), 3, "{issues:?}");
    assert!(issues
        .iter()
        .all(|issue| issue.is_error && issue.object.ends_with(".curvePreferences")));
    assert!(issues[0].message.contains("CurveP521"));
    assert!(issues[1].message.contains("secp521r1"));
    assert!(!runtime.has_options("p521@file"));
}

#[tokio::test]
async fn alpn_protocols_are_configurable() {
    let leaf = leaf();
    let options = TlsOptions {
        alpn_protocols: Some(vec!["http/1.1".to_string(), "acme-tls/1".to_string()]),
        ..TlsOptions::default()
    };
    let (runtime, issues) = build(&with_options(&leaf, &[("default", options)]), &[]);
    assert!(issues.is_empty(), "{issues:?}");
    let client = Client {
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..Client::sni("a.example.com")
    };
    let seen = connect(&runtime, &client).await.ok();
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn routes_choose_options_per_host() {
    let leaf = leaf();
    let config = with_options(&leaf, &[("tls12@file", version("", "VersionTLS12"))]);
    let routes = [
        route(&["a.example.com", "*.old.example.com"], "tls12@file"),
        route(&["b.example.com"], ""),
    ];
    let (runtime, issues) = build(&config, &routes);
    assert!(issues.is_empty(), "{issues:?}");

    let version_for = |sni: &'static str| {
        let runtime = &runtime;
        async move { connect(runtime, &Client::sni(sni)).await.ok().version }
    };
    assert_eq!(
        version_for("a.example.com").await,
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        version_for("A.Example.COM").await,
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        version_for("x.old.example.com").await,
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        version_for("b.example.com").await,
        Some(ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        version_for("c.example.com").await,
        Some(ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test]
async fn one_host_with_two_option_sets_falls_back_to_default() {
    let leaf = leaf();
    let config = with_options(&leaf, &[("tls12@file", version("", "VersionTLS12"))]);
    let routes = [
        route(&["a.example.com", "b.example.com"], "tls12@file"),
        route(&["a.example.com"], "default"),
        route(&["b.example.com"], "tls12@file"),
    ];
    let (runtime, issues) = build(&config, &routes);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(!issues[0].is_error);
    assert!(issues[0].message.contains("a.example.com"));

    let seen = connect(&runtime, &Client::sni("a.example.com")).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
    let seen = connect(&runtime, &Client::sni("b.example.com")).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_2));
}

#[tokio::test]
async fn an_invalid_default_falls_back_to_the_built_in_one() {
    let leaf = leaf();
    let config = with_options(&leaf, &[("default", version("VersionSSL30", ""))]);
    let (runtime, issues) = build(&config, &[route(&["a.example.com"], "missing@file")]);
    assert!(
        issues
            .iter()
            .any(|issue| issue.is_error && issue.object == "tls.options.default"),
        "{issues:?}"
    );
    assert!(runtime.has_options("default"));
    assert!(!runtime.has_options("missing@file"));
    let seen = connect(&runtime, &Client::sni("a.example.com")).await.ok();
    assert_eq!(seen.version, Some(ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn sessions_resume_unless_tickets_are_disabled() {
    let leaf = leaf();
    let no_tickets = TlsOptions {
        disable_session_tickets: true,
        ..TlsOptions::default()
    };
    let config = with_options(&leaf, &[("noresume@file", no_tickets)]);
    let (runtime, issues) = build(&config, &[route(&["c.example.com"], "noresume@file")]);
    assert!(issues.is_empty(), "{issues:?}");

    for client in [Client::sni("a.example.com"), tls12_only("a.example.com")] {
        let config = client.config();
        let first = connect_with(&runtime, &client, config.clone()).await.ok();
        assert_eq!(first.kind, Some(HandshakeKind::Full));
        let second = connect_with(&runtime, &client, config).await.ok();
        assert_eq!(
            second.kind,
            Some(HandshakeKind::Resumed),
            "{:?}",
            client.versions
        );
    }

    let client = Client::sni("c.example.com");
    let config = client.config();
    connect_with(&runtime, &client, config.clone()).await.ok();
    let second = connect_with(&runtime, &client, config).await.ok();
    assert_eq!(second.kind, Some(HandshakeKind::Full));
}

#[tokio::test]
async fn sessions_survive_a_reload() {
    let leaf = leaf();
    let shared = TlsShared::new().unwrap();
    let (before, _) = TlsRuntime::build(Some(&config_with(&[&leaf])), &[], &shared);
    let (after, _) = TlsRuntime::build(Some(&config_with(&[&leaf])), &[], &shared);
    let client = Client::sni("a.example.com");
    let config = client.config();
    connect_with(&before, &client, config.clone()).await.ok();
    let resumed = connect_with(&after, &client, config).await.ok();
    assert_eq!(resumed.kind, Some(HandshakeKind::Resumed));
}
