//! Traefik's KV layout (reference §5.3): every shape decodes as the same YAML would.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::collections::BTreeMap;

use viaduct_config::{decode_value, parse_document, DynamicConfig, Format, Origin};
use viaduct_kv::decode_layout;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn yaml(text: &str) -> DynamicConfig {
    parse_document(text, Format::Yaml, Origin::Inline("expected")).unwrap()
}

#[test]
fn every_shape_of_the_layout() {
    let decoded = decode_layout(
        &pairs(&[
            ("traefik/http/routers/r1/rule", "Host(`a.test`)"),
            ("traefik/http/routers/r1/entrypoints/0", "web"),
            ("traefik/http/routers/r1/entrypoints/1", "websecure"),
            ("traefik/http/routers/r1/middlewares/0", "m"),
            ("traefik/http/routers/r1/middlewares/1", "other@file"),
            ("traefik/http/routers/r1/service", "s"),
            ("traefik/http/routers/r1/priority", "42"),
            ("traefik/http/routers/r1/tls/certresolver", "le"),
            ("traefik/http/routers/r1/tls/domains/0/main", "a.test"),
            ("traefik/http/routers/r1/tls/domains/0/sans/0", "b.test"),
            ("traefik/http/routers/r1/tls/domains/0/sans/1", "c.test"),
            (
                "traefik/http/services/s/loadbalancer/servers/0/url",
                "http://127.0.0.1:1",
            ),
            (
                "traefik/http/services/s/loadbalancer/servers/1/url",
                "http://127.0.0.1:2",
            ),
            ("traefik/http/services/s/loadbalancer/servers/1/weight", "3"),
            (
                "traefik/http/services/s/loadbalancer/passhostheader",
                "false",
            ),
            (
                "traefik/http/services/s/loadbalancer/healthcheck/path",
                "/health",
            ),
            (
                "traefik/http/services/s/loadbalancer/healthcheck/interval",
                "10s",
            ),
            ("traefik/http/services/w/weighted/services/0/name", "s"),
            ("traefik/http/services/w/weighted/services/0/weight", "1"),
            ("traefik/http/services/mirror/mirroring/service", "s"),
            ("traefik/http/services/mirror/mirroring/mirrors/0/name", "w"),
            (
                "traefik/http/services/mirror/mirroring/mirrors/0/percent",
                "10",
            ),
            (
                "traefik/http/middlewares/m/headers/customrequestheaders/X-A",
                "one",
            ),
            (
                "traefik/http/middlewares/m/headers/customrequestheaders/X-Empty",
                "",
            ),
            (
                "traefik/http/middlewares/strip/stripprefix/prefixes/0",
                "/api",
            ),
            ("traefik/tcp/routers/t/rule", "HostSNI(`*`)"),
            ("traefik/tcp/routers/t/service", "ts"),
            (
                "traefik/tcp/services/ts/loadbalancer/servers/0/address",
                "127.0.0.1:3",
            ),
            ("traefik/udp/routers/u/service", "us"),
            (
                "traefik/udp/services/us/loadbalancer/servers/0/address",
                "127.0.0.1:4",
            ),
            ("traefik/tls/options/o/minversion", "VersionTLS13"),
            ("traefik/tls/options/o/snistrict", "true"),
            (
                "traefik/tls/stores/default/defaultcertificate/certfile",
                "/c.pem",
            ),
            (
                "traefik/tls/stores/default/defaultcertificate/keyfile",
                "/k.pem",
            ),
        ]),
        "traefik",
    )
    .unwrap();
    let expected = yaml(
        r#"
http:
  routers:
    r1:
      rule: "Host(`a.test`)"
      entryPoints: [web, websecure]
      middlewares: [m, other@file]
      service: s
      priority: 42
      tls:
        certResolver: le
        domains: [{main: a.test, sans: [b.test, c.test]}]
  services:
    s:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:1"}, {url: "http://127.0.0.1:2", weight: 3}]
        passHostHeader: false
        healthCheck: {path: /health, interval: 10s}
    w:
      weighted:
        services: [{name: s, weight: 1}]
    mirror:
      mirroring:
        service: s
        mirrors: [{name: w, percent: 10}]
  middlewares:
    m:
      headers:
        customRequestHeaders: {X-A: one, X-Empty: ""}
    strip:
      stripPrefix:
        prefixes: [/api]
tcp:
  routers:
    t: {rule: "HostSNI(`*`)", service: ts}
  services:
    ts: {loadBalancer: {servers: [{address: "127.0.0.1:3"}]}}
udp:
  routers:
    u: {service: us}
  services:
    us: {loadBalancer: {servers: [{address: "127.0.0.1:4"}]}}
tls:
  options:
    o: {minVersion: VersionTLS13, sniStrict: true}
  stores:
    default: {defaultCertificate: {certFile: /c.pem, keyFile: /k.pem}}
"#,
    );
    // Middleware options stay untyped until the middleware decodes them (case-insensitive,
    // indexed maps as lists): compared after that decoding.
    let mut decoded = decoded;
    let mut expected = expected;
    let options = |config: &mut DynamicConfig| {
        let middlewares = std::mem::take(&mut config.http.as_mut().unwrap().middlewares);
        let headers = middlewares["m"].headers.clone().unwrap();
        let prefixes = middlewares["strip"].strip_prefix.clone().unwrap();
        let headers: BTreeMap<String, BTreeMap<String, String>> =
            decode_value(lowercase_keys(headers), Origin::Inline("t")).unwrap();
        let prefixes: BTreeMap<String, Vec<String>> =
            decode_value(lowercase_keys(prefixes), Origin::Inline("t")).unwrap();
        (headers, prefixes)
    };
    let (decoded_options, expected_options) = (options(&mut decoded), options(&mut expected));
    assert_eq!(decoded_options, expected_options);
    assert_eq!(decoded_options.1["prefixes"], ["/api"]);
    assert_eq!(decoded, expected);
}

fn lowercase_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        other => other,
    }
}

#[test]
fn segments_ignore_case_and_map_keys_keep_their_spelling() {
    let decoded = decode_layout(
        &pairs(&[
            ("traefik/HTTP/Routers/r/Rule", "Path(`/`)"),
            ("traefik/http/routers/r/SERVICE", "s"),
            (
                "traefik/http/middlewares/h/Headers/CustomResponseHeaders/X-Mixed-Case",
                "v",
            ),
        ]),
        "traefik",
    )
    .unwrap();
    let http = decoded.http.unwrap();
    assert_eq!(http.routers["r"].rule, "Path(`/`)");
    assert_eq!(http.routers["r"].service, "s");
    let headers = serde_json_text(&http.middlewares["h"]);
    assert!(headers.contains("X-Mixed-Case"), "{headers}");
}

fn serde_json_text<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

#[test]
fn keys_outside_the_root_or_its_sections_are_ignored() {
    let decoded = decode_layout(
        &pairs(&[
            ("traefik/http/routers/r/rule", "Path(`/`)"),
            ("traefik/http/routers/r/service", "s"),
            ("other/http/routers/x/rule", "broken("),
            ("traefikx/http/routers/y/rule", "Path(`/y`)"),
            ("traefik", "the root itself"),
            ("traefik/version", "3"),
            ("traefik/acme/account", "{}"),
            ("rate:limiter:key", "1"),
        ]),
        "traefik",
    )
    .unwrap();
    let http = decoded.http.unwrap();
    assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["r"]);
    assert!(decoded.tcp.is_none() && decoded.udp.is_none() && decoded.tls.is_none());
}

#[test]
fn another_root_and_empty_segments() {
    let decoded = decode_layout(
        &pairs(&[
            ("/edge//http/routers/r/rule/", "Path(`/`)"),
            ("edge/http/routers/r/service", "s"),
            ("traefik/http/routers/not-mine/rule", "Path(`/x`)"),
        ]),
        "edge",
    )
    .unwrap();
    let http = decoded.http.unwrap();
    assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["r"]);
    assert_eq!(http.routers["r"].rule, "Path(`/`)");
}

#[test]
fn nothing_under_the_root_is_an_empty_configuration() {
    let decoded = decode_layout(&pairs(&[("unrelated", "x")]), "traefik").unwrap();
    assert!(decoded.is_empty());
}

#[test]
fn a_key_that_does_not_decode_is_named() {
    let error = decode_layout(
        &pairs(&[
            ("traefik/http/routers/r/rule", "Path(`/`)"),
            ("traefik/http/routers/r/priority", "high"),
            (
                "traefik/http/services/s/loadbalancer/servers/0/url",
                "http://x",
            ),
        ]),
        "traefik",
    )
    .unwrap_err();
    assert_eq!(error.key, "traefik/http/routers/r/priority", "{error}");

    let error = decode_layout(
        &pairs(&[("traefik/http/routers/r/nosuchoption", "1")]),
        "traefik",
    )
    .unwrap_err();
    assert_eq!(error.key, "traefik/http/routers/r/nosuchoption", "{error}");

    // A leaf that is also given sub-keys.
    let error = decode_layout(
        &pairs(&[
            ("traefik/http/routers/r/rule", "Path(`/`)"),
            ("traefik/http/routers/r/rule/x", "y"),
        ]),
        "traefik",
    )
    .unwrap_err();
    assert!(
        error.key.starts_with("traefik/http/routers/r/rule"),
        "{error}"
    );
}

#[test]
fn a_list_given_as_indexed_keys_keeps_its_order() {
    let decoded = decode_layout(
        &pairs(&[
            ("traefik/http/routers/r/rule", "Path(`/`)"),
            ("traefik/http/routers/r/entrypoints/1", "second"),
            ("traefik/http/routers/r/entrypoints/0", "first"),
        ]),
        "traefik",
    )
    .unwrap();
    assert_eq!(
        decoded.http.unwrap().routers["r"].entry_points,
        ["first", "second"]
    );
}

#[test]
fn an_empty_value_enables_a_section_with_its_defaults() {
    let decoded = decode_layout(
        &pairs(&[
            ("traefik/http/routers/r/rule", "Host(`a`)"),
            ("traefik/http/routers/r/service", "s"),
            ("traefik/http/routers/r/tls", ""),
            ("traefik/http/routers/plain/rule", "Host(`b`)"),
            ("traefik/http/routers/plain/service", "s"),
        ]),
        "traefik",
    )
    .unwrap();
    let http = decoded.http.unwrap();
    assert!(http.routers["r"].tls.is_some());
    assert!(http.routers["plain"].tls.is_none());
}
