//! Traefik reference §3.5, TCP cases T1–T16.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use viaduct_rules::{parse_http, parse_tcp, TcpFacts};

fn conn(sni: &str, ip: &str, alpn: &[&str]) -> bool_eval::Conn {
    bool_eval::Conn {
        sni: sni.to_owned(),
        ip: ip.parse().ok(),
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
    }
}

mod bool_eval {
    pub struct Conn {
        pub sni: String,
        pub ip: Option<std::net::IpAddr>,
        pub alpn: Vec<String>,
    }
}

fn matches(rule: &str, c: &bool_eval::Conn) -> bool {
    let rule = parse_tcp(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    let alpn: Vec<&str> = c.alpn.iter().map(String::as_str).collect();
    let sni = (!c.sni.is_empty()).then_some(c.sni.as_str());
    rule.matches(&TcpFacts {
        sni,
        client_ip: c.ip,
        alpn: &alpn,
    })
}

fn sni(name: &str) -> bool_eval::Conn {
    conn(name, "", &[])
}

#[test]
fn t01_host_sni() {
    assert!(matches("HostSNI(`example.com`)", &sni("example.com")));
    assert!(matches("HostSNI(`example.com`)", &sni("EXAMPLE.com")));
    assert!(!matches("HostSNI(`example.com`)", &sni("example.org")));
    assert!(!matches("HostSNI(`example.com`)", &sni("")));
}

#[test]
fn t02_catch_all() {
    let rule = parse_tcp("HostSNI(`*`)").unwrap();
    assert!(matches("HostSNI(`*`)", &sni("example.com")));
    assert!(matches("HostSNI(`*`)", &sni("")));
    let no_tls = TcpFacts {
        sni: None,
        client_ip: None,
        alpn: &[],
    };
    assert!(rule.matches(&no_tls));
    assert!(rule.is_catch_all());
    assert_eq!(rule.default_priority(), -1);
    let lower = parse_tcp("hostsni(`*`)").unwrap();
    assert!(lower.is_catch_all());
    assert_eq!(
        lower.default_priority(),
        12,
        "only the exact text gets −1, as Traefik"
    );
    let combined = parse_tcp("HostSNI(`*`) && ClientIP(`10.0.0.1`)").unwrap();
    assert!(!combined.is_catch_all());
    assert!(!parse_tcp("HostSNI(`example.com`)").unwrap().is_catch_all());
    assert!(!parse_tcp("HostSNIRegexp(`.*`)").unwrap().is_catch_all());
}

#[test]
fn t03_trailing_dot_in_argument() {
    assert!(matches("HostSNI(`example.com.`)", &sni("example.com")));
}

#[test]
fn t04_underscore_allowed() {
    assert!(matches(
        "HostSNI(`foo_bar.example.com`)",
        &sni("foo_bar.example.com")
    ));
}

#[test]
fn t05_wildcard() {
    assert!(matches("HostSNI(`*.example.com`)", &sni("foo.example.com")));
    assert!(!matches("HostSNI(`*.example.com`)", &sni("example.com")));
    assert!(!matches(
        "HostSNI(`*.example.com`)",
        &sni("a.b.example.com")
    ));
    assert!(parse_tcp("HostSNI(`*.*.example.com`)").is_err());
}

#[test]
fn t06_punycode_does_not_match_raw_emoji() {
    assert!(!matches("HostSNI(`xn--9t9h.com`)", &sni("💩.com")));
}

#[test]
fn t07_invalid_arguments() {
    assert!(parse_tcp("HostSNI(`💩.com`)").is_err());
    assert!(parse_tcp("HostSNI(``)").is_err());
    assert!(parse_tcp("HostSNI(`a.com`, `b.com`)").is_err());
    assert!(parse_tcp("HostSNI()").is_err());
}

#[test]
fn t08_host_sni_regexp() {
    let rule = r"HostSNIRegexp(`^example\.(com|org)$`)";
    assert!(matches(rule, &sni("example.org")));
    assert!(!matches(rule, &sni("example.com.")));
    assert!(!matches(rule, &sni("exampleuorg")));
    assert!(!matches(rule, &sni("")));
}

#[test]
fn t09_v2_template_is_plain_regexp() {
    assert!(!matches(
        "HostSNIRegexp(`example.{tld:(com|org)}`)",
        &sni("example.com")
    ));
}

#[test]
fn t10_client_ip() {
    let rule = "ClientIP(`20.20.20.20/24`)";
    assert!(matches(rule, &conn("", "20.20.20.40", &[])));
    assert!(!matches(rule, &conn("", "10.10.10.10", &[])));
    assert!(!matches(rule, &conn("", "", &[])));
}

#[test]
fn t11_alpn() {
    assert!(matches("ALPN(`h2`)", &conn("", "", &["h2"])));
    assert!(!matches("ALPN(`h2`)", &conn("", "", &["mqtt"])));
    assert!(!matches("ALPN(`h2`)", &conn("", "", &[])));
}

#[test]
fn t12_acme_tls_alpn_forbidden() {
    let err = parse_tcp("ALPN(`acme-tls/1`)").unwrap_err().to_string();
    assert!(err.contains("acme-tls/1"), "{err}");
}

#[test]
fn t13_alpn_combinations() {
    let rule = "ALPN(`h2c`) && (!ALPN(`h2`) || HostSNI(`example.eu`))";
    assert!(matches(rule, &conn("example.eu", "", &["h2c", "mqtt"])));
    assert!(!matches(
        rule,
        &conn("example.com", "", &["h2c", "http/1.1", "h2"])
    ));
    assert!(matches(
        rule,
        &conn("example.com", "", &["h2c", "http/1.1"])
    ));
    assert!(!matches(rule, &conn("", "", &["http/1.1", "mqtt"])));
}

#[test]
fn t14_not_over_group() {
    let rule = "!(HostSNI(`example.com`) && ClientIP(`10.0.0.2`))";
    assert!(!matches(rule, &conn("example.com", "10.0.0.2", &[])));
    assert!(matches(rule, &conn("example.com", "10.0.0.1", &[])));
}

#[test]
fn t15_precedence() {
    let rule = "HostSNI(`example.org`) || HostSNI(`example.com`) && ClientIP(`10.0.0.1`)";
    assert!(matches(rule, &conn("example.org", "10.0.0.2", &[])));
    assert!(!matches(rule, &conn("example.com", "10.0.0.2", &[])));
    assert!(matches(rule, &conn("example.com", "10.0.0.1", &[])));
}

#[test]
fn t16_spellings() {
    for rule in [
        "hostsni(`example.com`)",
        "HOSTSNI(`example.com`)",
        "Hostsni(`example.com`)",
    ] {
        assert!(matches(rule, &sni("example.com")), "{rule}");
    }
    assert!(parse_tcp("hostSNI(`example.com`)").is_err());
}

#[test]
fn http_and_tcp_matcher_sets_are_disjoint() {
    assert!(parse_http("HostSNI(`example.com`)").is_err());
    assert!(parse_http("ALPN(`h2`)").is_err());
    assert!(parse_tcp("Host(`example.com`)").is_err());
    assert!(parse_tcp("PathPrefix(`/`)").is_err());
    // ClientIP belongs to both.
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    assert!(parse_tcp("ClientIP(`10.0.0.0/8`)")
        .unwrap()
        .matches(&TcpFacts {
            sni: None,
            client_ip: Some(ip),
            alpn: &[],
        }));
}
