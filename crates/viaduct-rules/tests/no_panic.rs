//! Arbitrary text, biased towards the rule alphabet, never makes parsing or matching panic.

#![allow(clippy::unwrap_used)]

mod support;

use proptest::prelude::*;
use support::req;
use viaduct_rules::{
    parse_http_with, parse_tcp_with, routing_path, sanitize_path, RuleSyntax, TcpFacts,
};

fn ruleish() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("Host(".to_owned()),
        Just("PathRegexp(".to_owned()),
        Just("Query(".to_owned()),
        Just("HostSNI(".to_owned()),
        Just("Path(".to_owned()),
        Just("`".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just(")".to_owned()),
        Just("(".to_owned()),
        Just(", ".to_owned()),
        Just(" && ".to_owned()),
        Just(" || ".to_owned()),
        Just("!".to_owned()),
        Just("{x:[a-z]+}".to_owned()),
        Just("*.".to_owned()),
        Just("/a".to_owned()),
        Just("%2".to_owned()),
        Just("/../".to_owned()),
        "[a-z./{}\\[\\]*%:=&;+-]{0,4}",
        any::<String>(),
    ];
    prop::collection::vec(pieces, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_and_matching_never_panic(text in ruleish()) {
        let r = req("http://www.example.com/a/b?q=1&k").header("x-a", "1").ip("10.0.0.1");
        let facts = r.facts();
        let tcp = TcpFacts { sni: Some("www.example.com"), client_ip: None, alpn: &["h2"] };
        for syntax in [RuleSyntax::V3, RuleSyntax::V2] {
            if let Ok(rule) = parse_http_with(syntax, &text) {
                let _ = rule.matches(&facts);
                let _ = rule.required_hosts();
            }
            if let Ok(rule) = parse_tcp_with(syntax, &text) {
                let _ = rule.matches(&tcp);
            }
        }
        let _ = routing_path(&text);
        let _ = sanitize_path(&text);
    }
}
