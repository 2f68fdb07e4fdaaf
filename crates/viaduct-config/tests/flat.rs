//! Flat `key=value` decoding and labels.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use viaduct_config::flat::{decode_flat, decode_flat_with};
use viaduct_config::static_config::StaticConfig;
use viaduct_config::{decode_labels, DynamicConfig, GoDuration, Origin};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn labels(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs(items).into_iter().collect()
}

#[test]
fn flat_keys_fill_a_static_config() {
    let config: StaticConfig = decode_flat(
        &pairs(&[
            ("entryPoints.web.address", ":80"),
            ("entrypoints.WEB2.Address", ":81"),
            (
                "entryPoints.web.forwardedHeaders.trustedIPs",
                "10.0.0.0/8, 192.168.0.0/16",
            ),
            (
                "entryPoints.web.transport.respondingTimeouts.readTimeout",
                "5",
            ),
            ("entryPoints.web.asDefault", "true"),
            ("providers.providersThrottleDuration", "500ms"),
            ("log.level", "DEBUG"),
        ]),
        Origin::Flags,
    )
    .unwrap();
    let web = &config.entry_points["web"];
    assert_eq!(web.address, ":80");
    assert!(web.as_default);
    assert_eq!(
        web.forwarded_headers.trusted_ips,
        ["10.0.0.0/8", "192.168.0.0/16"]
    );
    assert_eq!(
        web.transport.responding_timeouts.read_timeout,
        GoDuration::from_secs(5)
    );
    assert_eq!(config.entry_points["WEB2"].address, ":81");
    assert_eq!(
        config.providers.providers_throttle_duration,
        GoDuration::from_millis(500)
    );
    assert_eq!(config.log.level, "DEBUG");
}

#[test]
fn bare_true_enables_a_section_with_defaults() {
    let config: StaticConfig =
        decode_flat(&pairs(&[("providers.docker", "true")]), Origin::Flags).unwrap();
    let docker = config.providers.docker.unwrap();
    assert!(docker.exposed_by_default);
    assert!(docker.watch);

    let config: StaticConfig = decode_flat(
        &pairs(&[
            ("providers.docker", "true"),
            ("providers.docker.exposedByDefault", "false"),
            ("providers.file.directory", "/x"),
        ]),
        Origin::Flags,
    )
    .unwrap();
    assert!(!config.providers.docker.unwrap().exposed_by_default);
    let file = config.providers.file.unwrap();
    assert_eq!(file.directory.as_deref(), Some("/x"));
    assert!(file.watch, "defaults kept for unset options");
}

#[test]
fn unknown_flat_key_is_an_error_with_its_path() {
    let err =
        decode_flat::<StaticConfig>(&pairs(&[("entryPoints.web.adress", ":80")]), Origin::Flags)
            .unwrap_err();
    assert_eq!(err.key, "entryPoints.web.adress");
    assert!(
        err.to_string().starts_with(
            "command-line flags (key `entryPoints.web.adress`): unknown field `adress`"
        ),
        "{err}"
    );
}

#[test]
fn value_and_sub_keys_conflict() {
    let err = decode_flat::<StaticConfig>(
        &pairs(&[("log.level", "INFO"), ("log.level.x", "y")]),
        Origin::Flags,
    )
    .unwrap_err();
    assert!(err.message.contains("`log.level`"), "{err}");
}

#[test]
fn indexed_lists_in_all_forms() {
    let expected: DynamicConfig = decode_flat(
        &pairs(&[
            ("http.routers.r.rule", "Host(`a`)"),
            ("http.routers.r.tls.domains[0].main", "a.example.com"),
            (
                "http.routers.r.tls.domains[0].sans",
                "b.example.com,c.example.com",
            ),
            ("http.routers.r.tls.domains[1].main", "d.example.com"),
        ]),
        Origin::Inline("t"),
    )
    .unwrap();
    let dotted: DynamicConfig = decode_flat(
        &pairs(&[
            ("http.routers.r.rule", "Host(`a`)"),
            ("http.routers.r.tls.domains.0.main", "a.example.com"),
            ("http.routers.r.tls.domains.0.sans.0", "b.example.com"),
            ("http.routers.r.tls.domains.0.sans.1", "c.example.com"),
            ("http.routers.r.tls.domains.1.main", "d.example.com"),
        ]),
        Origin::Inline("t"),
    )
    .unwrap();
    let kv: DynamicConfig = decode_flat_with(
        &pairs(&[
            ("http/routers/r/rule", "Host(`a`)"),
            ("http/routers/r/tls/domains/0/main", "a.example.com"),
            ("http/routers/r/tls/domains/0/sans/0", "b.example.com"),
            ("http/routers/r/tls/domains/0/sans/1", "c.example.com"),
            ("http/routers/r/tls/domains/1/main", "d.example.com"),
        ]),
        '/',
        Origin::Inline("kv"),
    )
    .unwrap();
    assert_eq!(expected, dotted);
    assert_eq!(expected, kv);
    let domains = &expected.http.unwrap().routers["r"]
        .tls
        .clone()
        .unwrap()
        .domains;
    assert_eq!(domains[0].sans, ["b.example.com", "c.example.com"]);
    assert_eq!(domains[1].main, "d.example.com");
}

#[test]
fn docker_labels_from_the_docs() {
    let config = decode_labels(
        &labels(&[
            ("traefik.enable", "true"),
            ("traefik.docker.network", "proxy"),
            (
                "traefik.http.routers.whoami.rule",
                "Host(`whoami.localhost`)",
            ),
            ("traefik.http.routers.whoami.entrypoints", "web,websecure"),
            ("traefik.http.routers.whoami.tls", "true"),
            ("traefik.http.routers.whoami.tls.certresolver", "le"),
            ("traefik.http.routers.whoami.middlewares", "strip@docker"),
            (
                "traefik.http.services.whoami.loadbalancer.server.port",
                "8080",
            ),
            (
                "traefik.http.services.whoami.loadbalancer.passhostheader",
                "false",
            ),
            (
                "traefik.http.services.whoami.loadbalancer.healthcheck.interval",
                "10s",
            ),
            (
                "traefik.http.middlewares.strip.stripprefix.prefixes",
                "/a,/b",
            ),
            ("traefik.tcp.routers.db.rule", "HostSNI(`*`)"),
            ("traefik.tcp.services.db.loadbalancer.server.port", "5432"),
            ("traefik.udp.services.dns.loadbalancer.server.port", "53"),
            ("other.http.routers.x.rule", "ignored"),
        ]),
        "traefik",
    )
    .unwrap();
    let http = config.http.as_ref().unwrap();
    let router = &http.routers["whoami"];
    assert_eq!(router.rule, "Host(`whoami.localhost`)");
    assert_eq!(router.entry_points, ["web", "websecure"]);
    assert_eq!(router.tls.as_ref().unwrap().cert_resolver, "le");
    assert_eq!(router.middlewares, ["strip@docker"]);
    let lb = http.services["whoami"].load_balancer.as_ref().unwrap();
    assert_eq!(lb.servers.len(), 1);
    assert_eq!(lb.servers[0].port.as_deref(), Some("8080"));
    assert!(!lb.pass_host_header);
    assert_eq!(
        lb.health_check.as_ref().unwrap().interval,
        Some(GoDuration::from_secs(10))
    );
    assert_eq!(
        http.middlewares["strip"].strip_prefix,
        Some(serde_json::json!({"prefixes": "/a,/b"}))
    );
    assert!(!http.routers.contains_key("x"));
    let tcp = config.tcp.as_ref().unwrap();
    assert_eq!(
        tcp.services["db"].load_balancer.as_ref().unwrap().servers[0]
            .port
            .as_deref(),
        Some("5432")
    );
    assert!(config.udp.as_ref().unwrap().services.contains_key("dns"));
}

#[test]
fn labels_tls_true_alone_makes_router_https() {
    let config = decode_labels(
        &labels(&[
            ("traefik.http.routers.r.rule", "Host(`a`)"),
            ("traefik.http.routers.r.tls", "true"),
        ]),
        "traefik",
    )
    .unwrap();
    assert_eq!(
        config.http.unwrap().routers["r"].tls,
        Some(Default::default())
    );
}

#[test]
fn bad_label_names_its_key() {
    let err = decode_labels(
        &labels(&[("traefik.http.routers.r.rulez", "Host(`a`)")]),
        "traefik",
    )
    .unwrap_err();
    assert_eq!(err.key, "http.routers.r.rulez");
}

#[test]
fn untyped_options_decode_case_insensitively_later() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct StripPrefix {
        prefixes: Vec<String>,
        force_slash: Option<bool>,
    }
    let options = serde_json::json!({"prefixes": "/a,/b", "FORCESLASH": "true"});
    let typed: StripPrefix =
        viaduct_config::decode_value(options, Origin::Inline("labels")).unwrap();
    assert_eq!(typed.prefixes, ["/a", "/b"]);
    assert_eq!(typed.force_slash, Some(true));
}
