//! `certificatesResolvers.<n>.acme` as Traefik reads it: defaults, spellings from flags, and what is refused.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use viaduct_acme::{AcmeSettings, KeyType, LETS_ENCRYPT_DIRECTORY};

#[test]
fn defaults_are_traefiks() {
    let settings = AcmeSettings::parse(
        "le",
        &json!({"storage": "acme.json", "httpChallenge": {"entryPoint": "web"}}),
    )
    .unwrap();
    assert_eq!(settings.ca_server, LETS_ENCRYPT_DIRECTORY);
    assert_eq!(settings.key_type, KeyType::Rsa4096);
    assert_eq!(settings.certificates_duration_hours, 2160);
    assert_eq!(
        settings.renewal(),
        (Duration::from_secs(30 * 86400), Duration::from_secs(86400)),
        "90-day certificates renew 30 days before expiry, checked daily"
    );
    assert_eq!(settings.http_challenge.unwrap().entry_point, "web");
}

#[test]
fn renewal_follows_the_certificates_duration_table() {
    let renewal = |hours: u64| {
        AcmeSettings::parse(
            "le",
            &json!({"storage": "a", "tlsChallenge": {}, "certificatesDuration": hours}),
        )
        .unwrap()
        .renewal()
    };
    let (h, d) = (3600, 86400);
    assert_eq!(
        renewal(365 * 24),
        (Duration::from_secs(120 * d), Duration::from_secs(7 * d))
    );
    assert_eq!(
        renewal(30 * 24),
        (Duration::from_secs(10 * d), Duration::from_secs(12 * h))
    );
    assert_eq!(
        renewal(7 * 24),
        (Duration::from_secs(2 * d), Duration::from_secs(2 * h))
    );
    assert_eq!(
        renewal(24),
        (Duration::from_secs(6 * h), Duration::from_secs(600))
    );
    assert_eq!(
        renewal(1),
        (Duration::from_secs(1200), Duration::from_secs(60))
    );
}

#[test]
fn values_given_as_strings_by_flags_and_environment_are_read() {
    let settings = AcmeSettings::parse(
        "le",
        &json!({
            "storage": "a",
            "keyType": "EC384",
            "certificatesDuration": "24",
            "caSystemCertPool": "true",
            "dnsChallenge": {"provider": "exec", "propagation": {"delayBeforeChecks": "2s", "disableChecks": "true"}},
        }),
    )
    .unwrap();
    assert_eq!(settings.key_type, KeyType::Ec384);
    assert_eq!(settings.certificates_duration_hours, 24);
    assert!(settings.ca_system_cert_pool);
    let dns = settings.dns_challenge.unwrap();
    assert_eq!(dns.delay_before_checks, Duration::from_secs(2));
    assert!(dns.disable_checks);
}

#[test]
fn retired_v01_urls_are_rewritten() {
    let settings = AcmeSettings::parse(
        "le",
        &json!({"storage": "a", "tlsChallenge": {}, "caServer": "https://acme-v01.api.letsencrypt.org/directory"}),
    )
    .unwrap();
    assert_eq!(settings.ca_server, LETS_ENCRYPT_DIRECTORY);
}

#[test]
fn incomplete_resolvers_are_refused_with_the_reason() {
    let error = |value| AcmeSettings::parse("le", &value).unwrap_err().to_string();
    assert!(error(json!({"tlsChallenge": {}})).contains("storage is required"));
    assert!(error(json!({"storage": "a"})).contains("no challenge"));
    assert!(error(json!({"storage": "a", "httpChallenge": {}})).contains("entryPoint is required"));
    assert!(error(json!({"storage": "a", "dnsChallenge": {}})).contains("provider is required"));
    assert!(
        error(json!({"storage": "a", "tlsChallenge": {}, "certificatesDuration": "x"}))
            .starts_with("certificatesResolvers.le:")
    );
}

#[test]
fn key_types_read_traefiks_and_legos_names() {
    for (name, expected, stored) in [
        ("EC256", KeyType::Ec256, "P256"),
        ("EC384", KeyType::Ec384, "P384"),
        ("RSA2048", KeyType::Rsa2048, "2048"),
        ("RSA4096", KeyType::Rsa4096, "4096"),
        ("rsa8192", KeyType::Rsa8192, "8192"),
    ] {
        let key_type = KeyType::parse(name).unwrap();
        assert_eq!(key_type, expected);
        assert_eq!(key_type.stored_name(), stored);
        assert_eq!(KeyType::parse(stored), Some(expected));
    }
    assert_eq!(KeyType::parse("DSA"), None);
}

#[test]
fn flags_and_any_key_case_are_read() {
    let pairs: Vec<(String, String)> = [
        ("certificatesresolvers.le.acme.storage", "/data/acme.json"),
        ("certificatesresolvers.le.acme.keytype", "EC256"),
        (
            "certificatesresolvers.le.acme.httpchallenge.entrypoint",
            "web",
        ),
        (
            "certificatesresolvers.le.acme.dnschallenge.provider",
            "exec",
        ),
        (
            "certificatesresolvers.le.acme.dnschallenge.resolvers",
            "1.1.1.1:53,8.8.8.8:53",
        ),
        (
            "certificatesresolvers.le.acme.cacertificates",
            "/a.pem,/b.pem",
        ),
        ("certificatesresolvers.le.acme.tlschallenge", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config: viaduct_config::StaticConfig =
        viaduct_config::decode_flat(&pairs, viaduct_config::Origin::Inline("flags")).unwrap();
    let acme = config.certificates_resolvers["le"].acme.as_ref().unwrap();
    let settings = AcmeSettings::parse("le", acme).unwrap();
    assert_eq!(settings.storage, "/data/acme.json");
    assert_eq!(settings.key_type, KeyType::Ec256);
    assert_eq!(settings.http_challenge.unwrap().entry_point, "web");
    let dns = settings.dns_challenge.unwrap();
    assert_eq!(dns.resolvers, ["1.1.1.1:53", "8.8.8.8:53"]);
    assert_eq!(settings.ca_certificates, ["/a.pem", "/b.pem"]);
    assert!(
        settings.tls_challenge.is_some(),
        "--…tlschallenge=true enables it"
    );

    let yaml = "certificatesResolvers:\n  le:\n    acme:\n      STORAGE: a.json\n      TLSChallenge:\n      CAServer: https://ca.example/dir\n";
    let config: viaduct_config::StaticConfig = viaduct_config::parse_document(
        yaml,
        viaduct_config::Format::Yaml,
        viaduct_config::Origin::Inline("yaml"),
    )
    .unwrap();
    let settings = AcmeSettings::parse(
        "le",
        config.certificates_resolvers["le"].acme.as_ref().unwrap(),
    )
    .unwrap();
    assert_eq!(settings.storage, "a.json");
    assert_eq!(settings.ca_server, "https://ca.example/dir");
    assert!(settings.tls_challenge.is_some());
}
