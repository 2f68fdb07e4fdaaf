//! The deprecated v2 syntax (`ruleSyntax: v2`).

#![allow(clippy::unwrap_used)]

mod support;

use support::{matches_v2, req};
use viaduct_rules::{parse_http, parse_http_with, parse_tcp_with, RuleSyntax, TcpFacts};

#[test]
fn multi_value_matchers() {
    let rule = "Host(`a.com`, `b.com`)";
    assert!(matches_v2(rule, &req("http://b.com/")));
    assert!(!matches_v2(rule, &req("http://c.com/")));
    assert!(matches_v2("HostHeader(`a.com`)", &req("http://A.com/")));
    assert!(matches_v2("PathPrefix(`/a`, `/b`)", &req("/b/x")));
    assert!(matches_v2("Path(`/a`, `/b`)", &req("/b")));
    assert!(matches_v2(
        "Method(`get`, `POST`)",
        &req("/").method("POST")
    ));
    assert!(matches_v2(
        "ClientIP(`10.0.0.1`, `10.1.0.0/16`)",
        &req("/").ip("10.1.2.3")
    ));
}

#[test]
fn no_wildcard_host_in_v2() {
    assert!(!matches_v2("Host(`*.a.com`)", &req("http://x.a.com/")));
    assert!(!matches_v2("Host(`*`)", &req("http://x.a.com/")));
}

#[test]
fn headers_matchers() {
    let r = req("/").header("x-a", "1").header("x-b", "two");
    assert!(matches_v2("Headers(`X-A`, `1`)", &r));
    assert!(matches_v2("Headers(`X-A`, `1`, `X-B`, `two`)", &r));
    assert!(!matches_v2("Headers(`X-A`, `1`, `X-B`, `2`)", &r));
    assert!(matches_v2("HeadersRegexp(`X-B`, `^t`)", &r));
    assert!(parse_http_with(RuleSyntax::V2, "Headers(`X-A`)").is_err());
    assert!(
        parse_http("Headers(`X-A`, `1`)").is_err(),
        "v3 has no Headers"
    );
}

#[test]
fn query_pairs() {
    assert!(matches_v2("Query(`q=traefik`)", &req("/?q=traefik")));
    assert!(!matches_v2("Query(`q=traefik`)", &req("/?q=nginx")));
    assert!(matches_v2("Query(`q=`)", &req("/?q=anything")));
    assert!(!matches_v2("Query(`q=`)", &req("/?x=1")));
    assert!(matches_v2("Query(`q={v:[0-9]+}`)", &req("/?q=42")));
    assert!(matches_v2("Query(`a=1`, `b=2`)", &req("/?a=1&b=2")));
    assert!(!matches_v2("Query(`a=1`, `b=2`)", &req("/?a=1")));
    assert!(parse_http_with(RuleSyntax::V2, "Query(`q`)").is_err());
}

#[test]
fn gorilla_templates() {
    let rule = "HostRegexp(`{sub:[a-z]+}.example.com`)";
    assert!(matches_v2(rule, &req("http://api.example.com/")));
    assert!(!matches_v2(rule, &req("http://api.example.com.evil/")));
    assert!(matches_v2(
        "HostRegexp(`{any}.example.com`)",
        &req("http://x.example.com/")
    ));
    assert!(!matches_v2(
        "HostRegexp(`{any}.example.com`)",
        &req("http://x.y.example.com/")
    ));
    assert!(matches_v2("Path(`/users/{id:[0-9]+}`)", &req("/users/42")));
    assert!(!matches_v2(
        "Path(`/users/{id:[0-9]+}`)",
        &req("/users/42/x")
    ));
    assert!(matches_v2("PathPrefix(`/users/{id}`)", &req("/users/42/x")));
    assert!(!matches_v2("PathPrefix(`/users/{id}`)", &req("/users/")));
    assert!(
        parse_http_with(RuleSyntax::V2, "Path(`/{id:(a|b)}`)").is_err(),
        "capture group"
    );
    assert!(parse_http_with(RuleSyntax::V2, "Path(`/{id:}`)").is_err());
    assert!(parse_http_with(RuleSyntax::V2, "Path(`/{id`)").is_err());
    assert!(parse_http_with(RuleSyntax::V2, "Path(`users`)").is_err());
}

#[test]
fn v3_only_matchers_are_unknown_in_v2() {
    for rule in [
        "PathRegexp(`^/`)",
        "QueryRegexp(`a`, `b`)",
        "Header(`a`, `b`)",
    ] {
        assert!(parse_http_with(RuleSyntax::V2, rule).is_err(), "{rule}");
    }
}

#[test]
fn syntax_names_parse() {
    assert_eq!("v2".parse::<RuleSyntax>().unwrap(), RuleSyntax::V2);
    assert_eq!("v3".parse::<RuleSyntax>().unwrap(), RuleSyntax::V3);
    assert!("v1".parse::<RuleSyntax>().is_err());
    assert_eq!(RuleSyntax::default(), RuleSyntax::V3);
}

#[test]
fn tcp_v2_multi_values() {
    let rule = parse_tcp_with(RuleSyntax::V2, "HostSNI(`a.com`, `b.com`)").unwrap();
    let facts = |sni| TcpFacts {
        sni: Some(sni),
        client_ip: None,
        alpn: &[],
    };
    assert!(rule.matches(&facts("b.com")));
    assert!(!rule.matches(&facts("c.com")));
    let templ = parse_tcp_with(RuleSyntax::V2, "HostSNIRegexp(`{x:[a-z]+}.com`)").unwrap();
    assert!(templ.matches(&facts("abc.com")));
    assert!(!templ.matches(&facts("abc.org")));
}
