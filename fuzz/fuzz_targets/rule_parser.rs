//! Parses arbitrary text as HTTP and TCP rules in both syntaxes and evaluates whatever parses
//! against a fixed request and connection: neither step may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use viaduct_rules::{
    parse_http_with, parse_tcp_with, routing_path, sanitize_path, RequestFacts, RuleSyntax,
    TcpFacts,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("https"));
    let facts = RequestFacts {
        host: "www.example.com",
        path: "/api/v1/users",
        method: &http::Method::GET,
        headers: &headers,
        query: Some("q=traefik&mobile&a+b=%41"),
        client_ip: Some([192, 168, 1, 10].into()),
    };
    let tcp = TcpFacts {
        sni: Some("www.example.com"),
        client_ip: Some([10, 0, 0, 1].into()),
        alpn: &["h2", "http/1.1"],
    };
    for syntax in [RuleSyntax::V3, RuleSyntax::V2] {
        if let Ok(rule) = parse_http_with(syntax, text) {
            let _ = rule.matches(&facts);
            let _ = rule.default_priority();
            let _ = rule.required_hosts();
        }
        if let Ok(rule) = parse_tcp_with(syntax, text) {
            let _ = rule.matches(&tcp);
            let _ = rule.is_catch_all();
        }
    }
    let _ = routing_path(text);
    let _ = sanitize_path(text);
});
