//! Merging provider configurations: qualified names and references, TLS rules.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{yaml, CapturedLogs};
use viaduct_config::DynamicConfig;
use viaduct_providers::merge;

const FILE_CONFIG: &str = r#"
http:
  routers:
    web:
      rule: Host(`a`)
      service: app
      middlewares: [auth, "strip@docker"]
      parentRefs: [parent]
      tls: { options: modern }
    plain:
      service: "app@docker"
      tls: { options: default }
  services:
    app:
      middlewares: [retry]
      loadBalancer: { servers: [{ url: "http://127.0.0.1:1" }], serversTransport: tr }
    split:
      weighted: { services: [{ name: app }, { name: "other@docker" }] }
    hrw:
      highestRandomWeight: { services: [{ name: app }] }
    mirror:
      mirroring: { service: app, mirrors: [{ name: shadow, percent: 10 }] }
    fo:
      failover: { service: app, fallback: backup }
  middlewares:
    both:
      chain: { middlewares: [auth, "ext@docker"] }
    oops:
      errors: { status: ["500"], service: errpages, query: "/{status}" }
    auth:
      basicAuth: { users: ["u:p"] }
  serversTransports:
    tr: { serverName: x }
tcp:
  routers:
    db:
      rule: HostSNI(`*`)
      service: dbsvc
      middlewares: [limit]
      tls: { options: strict }
  services:
    dbsvc:
      loadBalancer: { servers: [{ address: "127.0.0.1:1" }], serversTransport: ttr }
    dbsplit:
      weighted: { services: [{ name: dbsvc }] }
  middlewares:
    limit: { inFlightConn: { amount: 1 } }
  serversTransports:
    ttr: {}
udp:
  routers:
    dns: { service: dnssvc }
  services:
    dnssvc: { loadBalancer: { servers: [{ address: "127.0.0.1:53" }] } }
    dnssplit: { weighted: { services: [{ name: dnssvc }] } }
"#;

fn configs(entries: &[(&str, &str)]) -> BTreeMap<String, DynamicConfig> {
    entries
        .iter()
        .map(|(provider, text)| (provider.to_string(), yaml(text)))
        .collect()
}

#[test]
fn names_and_references_are_qualified_with_the_provider() {
    let merged = merge(&configs(&[("file", FILE_CONFIG)]));
    let http = merged.http.as_ref().unwrap();
    let tcp = merged.tcp.as_ref().unwrap();
    let udp = merged.udp.as_ref().unwrap();
    let chain = http.middlewares["both@file"].chain.as_ref().unwrap();
    let errors = http.middlewares["oops@file"].errors.as_ref().unwrap();
    let web = &http.routers["web@file"];
    let app = &http.services["app@file"];
    let mirroring = http.services["mirror@file"].mirroring.as_ref().unwrap();
    let failover = http.services["fo@file"].failover.as_ref().unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        ("router service", web.service.clone(), "app@file"),
        (
            "router middlewares",
            web.middlewares.join(","),
            "auth@file,strip@docker",
        ),
        (
            "router parentRefs",
            web.parent_refs.join(","),
            "parent@file",
        ),
        (
            "router tls options",
            web.tls.as_ref().unwrap().options.clone(),
            "modern@file",
        ),
        (
            "qualified reference kept",
            http.routers["plain@file"].service.clone(),
            "app@docker",
        ),
        (
            "default tls options unqualified",
            http.routers["plain@file"]
                .tls
                .as_ref()
                .unwrap()
                .options
                .clone(),
            "default",
        ),
        (
            "service middlewares",
            app.middlewares.join(","),
            "retry@file",
        ),
        (
            "loadBalancer serversTransport",
            app.load_balancer
                .as_ref()
                .unwrap()
                .servers_transport
                .clone()
                .unwrap(),
            "tr@file",
        ),
        (
            "weighted services",
            names(
                &http.services["split@file"]
                    .weighted
                    .as_ref()
                    .unwrap()
                    .services,
            ),
            "app@file,other@docker",
        ),
        (
            "highestRandomWeight services",
            names(
                &http.services["hrw@file"]
                    .highest_random_weight
                    .as_ref()
                    .unwrap()
                    .services,
            ),
            "app@file",
        ),
        ("mirroring service", mirroring.service.clone(), "app@file"),
        (
            "mirroring mirrors",
            mirroring.mirrors[0].name.clone(),
            "shadow@file",
        ),
        ("failover service", failover.service.clone(), "app@file"),
        (
            "failover fallback",
            failover.fallback.clone(),
            "backup@file",
        ),
        (
            "chain middlewares",
            chain["middlewares"].to_string(),
            r#"["auth@file","ext@docker"]"#,
        ),
        (
            "errors service",
            errors["service"].to_string(),
            r#""errpages@file""#,
        ),
        (
            "errors other options untouched",
            errors["query"].to_string(),
            r#""/{status}""#,
        ),
        (
            "tcp router service",
            tcp.routers["db@file"].service.clone(),
            "dbsvc@file",
        ),
        (
            "tcp router middlewares",
            tcp.routers["db@file"].middlewares.join(","),
            "limit@file",
        ),
        (
            "tcp router tls options",
            tcp.routers["db@file"].tls.as_ref().unwrap().options.clone(),
            "strict@file",
        ),
        (
            "tcp loadBalancer serversTransport",
            tcp.services["dbsvc@file"]
                .load_balancer
                .as_ref()
                .unwrap()
                .servers_transport
                .clone()
                .unwrap(),
            "ttr@file",
        ),
        (
            "tcp weighted services",
            names(
                &tcp.services["dbsplit@file"]
                    .weighted
                    .as_ref()
                    .unwrap()
                    .services,
            ),
            "dbsvc@file",
        ),
        (
            "udp router service",
            udp.routers["dns@file"].service.clone(),
            "dnssvc@file",
        ),
        (
            "udp weighted services",
            names(
                &udp.services["dnssplit@file"]
                    .weighted
                    .as_ref()
                    .unwrap()
                    .services,
            ),
            "dnssvc@file",
        ),
    ];
    for (what, actual, expected) in cases {
        assert_eq!(actual, expected, "{what}");
    }

    let keys = |m: Vec<&String>| m.into_iter().cloned().collect::<Vec<_>>().join(",");
    assert_eq!(keys(http.routers.keys().collect()), "plain@file,web@file");
    assert_eq!(keys(http.servers_transports.keys().collect()), "tr@file");
    assert_eq!(
        keys(http.middlewares.keys().collect()),
        "auth@file,both@file,oops@file"
    );
    assert_eq!(keys(tcp.middlewares.keys().collect()), "limit@file");
    assert_eq!(keys(tcp.servers_transports.keys().collect()), "ttr@file");
    assert_eq!(keys(udp.routers.keys().collect()), "dns@file");
}

#[test]
fn providers_are_merged_side_by_side() {
    let merged = merge(&configs(&[
        ("file", "http:\n  routers:\n    web: { service: app }\n"),
        ("docker", "http:\n  routers:\n    web: { service: app }\n"),
    ]));
    let routers = &merged.http.unwrap().routers;
    assert_eq!(routers["web@file"].service, "app@file");
    assert_eq!(routers["web@docker"].service, "app@docker");
}

#[test]
fn names_containing_at_are_skipped_with_an_error() {
    let (logs, _guard) = CapturedLogs::start();
    let merged = merge(&configs(&[(
        "file",
        "http:\n  routers:\n    \"bad@x\": { service: a }\n    good: { service: a }\n",
    )]));
    let routers = &merged.http.unwrap().routers;
    assert_eq!(routers.keys().collect::<Vec<_>>(), ["good@file"]);
    let lines = logs.lines_with("http.routers.bad@x");
    assert_eq!(lines.len(), 1, "{}", logs.text());
    assert!(lines[0].contains("ERROR"));
}

#[test]
fn tls_certificates_concatenate_and_named_options_are_qualified() {
    let merged = merge(&configs(&[
        (
            "file",
            "tls:\n  certificates: [{ certFile: a.crt, keyFile: a.key }]\n  options:\n    \
             default: { minVersion: VersionTLS12 }\n    modern: { minVersion: VersionTLS13 }\n  \
             stores:\n    default: {}\n",
        ),
        (
            "docker",
            "tls:\n  certificates: [{ certFile: b.crt, keyFile: b.key }]\n  options:\n    \
             modern: { minVersion: VersionTLS12 }\n",
        ),
    ]));
    let tls = merged.tls.unwrap();
    let certs: Vec<&str> = tls
        .certificates
        .iter()
        .map(|c| c.cert_file.as_str())
        .collect();
    assert_eq!(certs, ["b.crt", "a.crt"]);
    let options: Vec<&String> = tls.options.keys().collect();
    assert_eq!(options, ["default", "modern@docker", "modern@file"]);
    assert_eq!(tls.options["default"].min_version, "VersionTLS12");
    assert!(tls.stores.contains_key("default"));
}

#[test]
fn default_tls_options_and_store_defined_by_two_providers_are_dropped() {
    let doc =
        "tls:\n  options:\n    default: { minVersion: VersionTLS13 }\n  stores:\n    default: {}\n";
    let (logs, _guard) = CapturedLogs::start();

    let merged = merge(&configs(&[("file", doc), ("docker", doc)]));

    let tls = merged.tls.unwrap();
    assert!(tls.options.is_empty(), "{:?}", tls.options);
    assert!(tls.stores.is_empty(), "{:?}", tls.stores);
    let options_error = logs.lines_with("tls.options.default");
    assert_eq!(options_error.len(), 1, "{}", logs.text());
    assert!(options_error[0].contains("ERROR") && options_error[0].contains("docker"));
    assert_eq!(logs.lines_with("tls.stores.default").len(), 1);
}

fn names(services: &[viaduct_config::WeightedService]) -> String {
    services
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
