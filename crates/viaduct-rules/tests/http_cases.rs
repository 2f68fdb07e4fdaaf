//! Traefik reference §3.5, HTTP cases #1–#46 (those about rules and priority).

#![allow(clippy::unwrap_used)]

mod support;

use http::{HeaderMap, HeaderValue, Uri};
use support::{is_err, matches, req};
use viaduct_rules::{canonical_host, parse_http, RouterEntry, RouterTable};

#[test]
fn case_01_port_ignored() {
    assert!(matches(
        "Host(`example.com`)",
        &req("https://example.com:8080/path")
    ));
}

#[test]
fn case_02_request_host_case_insensitive() {
    assert!(matches(
        "Host(`example.com`)",
        &req("https://EXAMPLE.COM/path")
    ));
}

#[test]
fn case_03_rule_host_case_insensitive() {
    assert!(matches("Host(`EXAMPLE.COM`)", &req("https://example.com")));
}

#[test]
fn case_04_trailing_dot_in_rule() {
    assert!(matches("Host(`example.com.`)", &req("https://example.com")));
    assert!(matches(
        "Host(`example.com.`)",
        &req("https://example.com.")
    ));
}

#[test]
fn case_05_trailing_dot_in_request() {
    assert!(matches("Host(`example.com`)", &req("https://example.com.")));
    // Also when the facts were built without canonicalisation.
    assert!(matches(
        "Host(`example.com`)",
        &req("/").host("example.com.")
    ));
}

#[test]
fn case_06_other_host() {
    assert!(!matches("Host(`example.com`)", &req("https://example.org")));
}

#[test]
fn case_07_punycode() {
    assert!(matches(
        "Host(`xn--9t9h.com`)",
        &req("https://xn--9t9h.com")
    ));
    assert!(!matches("Host(`xn--9t9h.com`)", &req("/").host("💩.com")));
}

#[test]
fn case_08_non_ascii_argument() {
    let err = parse_http("Host(`💩.com`)").unwrap_err().to_string();
    assert!(err.contains("non-ASCII"), "{err}");
}

#[test]
fn case_09_one_label_wildcard() {
    let rule = "Host(`*.example.com`)";
    assert!(matches(rule, &req("https://test.example.com")));
    assert!(!matches(rule, &req("https://example.com")));
    assert!(!matches(rule, &req("https://test.otherexample.com")));
    assert!(!matches(rule, &req("https://a.b.example.com")));
    assert!(matches(rule, &req("https://TEST.Example.com.")));
}

#[test]
fn case_10_star_matches_everything() {
    assert!(matches("Host(`*`)", &req("http://localhost/")));
    assert!(matches("Host(`*`)", &req("https://example.org/x")));
    assert!(matches("Host(`*`)", &req("/no-host")));
}

#[test]
fn case_11_host_two_arguments() {
    assert!(is_err("Host(`example.com`, `example.org`)"));
}

#[test]
fn case_12_ip_literal_hosts() {
    assert!(matches("Host(`127.0.0.1`)", &req("http://127.0.0.1/foo")));
    assert!(matches("Host(`10::10`)", &req("http://[10::10]/foo")));
    assert!(matches("Host(`10::10`)", &req("http://[10::10]:8080/foo")));
}

#[test]
fn case_13_absolute_uri_authority_wins() {
    let uri: Uri = "http://example.com/".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.org"));
    let host = canonical_host(&uri, &headers);
    let r = req("/").host(&host);
    assert!(matches("Host(`example.com`)", &r));
    assert!(!matches("Host(`example.org`)", &r));
}

#[test]
fn case_14_empty_authority_falls_back_to_header() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.com"));
    // `http://@/` when the URI library accepts it; an origin-form URI otherwise behaves alike.
    for url in ["http://@/", "/"] {
        if let Ok(uri) = url.parse::<Uri>() {
            let host = canonical_host(&uri, &headers);
            assert_eq!(host, "example.com", "{url}");
            assert!(matches("Host(`example.com`)", &req("/").host(&host)));
        }
    }
}

#[test]
fn case_15_host_regexp_ignores_port() {
    let rule = r"HostRegexp(`^[a-zA-Z-]+\.com$`)";
    assert!(matches(rule, &req("https://example.com:8080/")));
    assert!(!matches(rule, &req("https://example.org/")));
}

#[test]
fn case_16_host_regexp_sees_lower_case_host() {
    assert!(!matches(
        r"HostRegexp(`^[A-Z]+\.com$`)",
        &req("https://EXAMPLE.com/")
    ));
}

#[test]
fn case_17_v2_template_under_v3_is_plain_regexp() {
    assert!(!matches(
        r"HostRegexp(`{domain:[a-zA-Z-]+\.com}`)",
        &req("https://example.com/")
    ));
}

#[test]
fn case_18_path_exact() {
    let rule = "Path(`/css`)";
    assert!(matches(rule, &req("/css")));
    assert!(!matches(rule, &req("/css/")));
    assert!(!matches(rule, &req("/css/main.css")));
    assert!(!matches(rule, &req("/html")));
    assert!(matches(rule, &req("https://any.host/css")));
}

#[test]
fn case_19_path_must_start_with_slash() {
    assert!(is_err("Path(`css`)"));
    assert!(is_err("PathPrefix(`css`)"));
}

#[test]
fn case_20_path_prefix() {
    let rule = "PathPrefix(`/css`)";
    assert!(matches(rule, &req("/css")));
    assert!(matches(rule, &req("/css/")));
    assert!(matches(rule, &req("/css/main.css")));
    assert!(!matches(rule, &req("/html")));
}

#[test]
fn case_21_prefix_has_no_segment_boundary() {
    assert!(matches(
        "PathPrefix(`/products`)",
        &req("/products-for-sale")
    ));
}

#[test]
fn case_22_path_regexp() {
    let rule = "PathRegexp(`^/(css|js)`)";
    assert!(matches(rule, &req("/js/main.js")));
    assert!(!matches(rule, &req("/CSS")));
}

#[test]
fn case_23_braces_are_literal_and_decoded() {
    let rule = "PathRegexp(`/{path:(css|js)}`)";
    assert!(matches(rule, &req("/").raw_path("/{path:css}")));
    assert!(matches(rule, &req("/%7Bpath:css%7D")));
    assert!(!matches(rule, &req("/css")));
}

#[test]
fn case_24_routing_path_decoding() {
    assert!(matches("Path(`/foo bar`)", &req("/foo%20bar")));
    assert!(!matches("Path(`/foo/bar`)", &req("/foo%2Fbar")));
    assert!(matches("Path(`/foo%2Fbar`)", &req("/foo%2fbar")));
}

#[test]
fn case_25_method() {
    for rule in ["Method(`GET`)", "Method(`get`)"] {
        assert!(matches(rule, &req("/")));
        assert!(!matches(rule, &req("/").method("POST")));
        assert!(!matches(rule, &req("/").method("get")));
    }
}

#[test]
fn case_26_method_two_arguments() {
    assert!(is_err("Method(`GET`, `POST`)"));
}

#[test]
fn case_27_header() {
    for rule in [
        "Header(`X-Forwarded-Proto`, `https`)",
        "Header(`x-forwarded-proto`, `https`)",
    ] {
        let both = req("/")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-proto", "https");
        assert!(matches(rule, &both));
        assert!(!matches(
            rule,
            &req("/").header("x-forwarded-host", "https")
        ));
    }
}

#[test]
fn case_28_header_missing_or_empty_value() {
    assert!(is_err("Header(`X-Forwarded-Host`, ``)"));
    assert!(is_err("Header(`X-Forwarded-Host`)"));
}

#[test]
fn case_29_header_regexp() {
    let rule = "HeaderRegexp(`X-Forwarded-Proto`, `^https?$`)";
    assert!(matches(rule, &req("/").header("x-forwarded-proto", "http")));
    assert!(!matches(
        rule,
        &req("/").header("x-forwarded-proto", "HTTPS")
    ));
    let two = req("/")
        .header("x-forwarded-proto", "ws")
        .header("x-forwarded-proto", "https");
    assert!(matches(rule, &two));
}

#[test]
fn case_30_header_regexp_braces_literal() {
    let rule = "HeaderRegexp(`X-Forwarded-Proto`, `http{secure:s?}`)";
    assert!(matches(
        rule,
        &req("/").header("x-forwarded-proto", "http{secure:s}")
    ));
    assert!(!matches(
        rule,
        &req("/").header("x-forwarded-proto", "https")
    ));
}

#[test]
fn case_31_query() {
    let rule = "Query(`q`, `traefik`)";
    for url in [
        "/?q=traefik",
        "/?rel=ddg&q=traefik",
        "/?q=awesome&q=traefik",
    ] {
        assert!(matches(rule, &req(url)), "{url}");
    }
    for url in ["/?q=TRAEFIK", "/?Q=traefik", "/"] {
        assert!(!matches(rule, &req(url)), "{url}");
    }
    assert!(matches(rule, &req("/?q=tr%61efik")));
}

#[test]
fn case_32_query_key_only() {
    assert!(matches("Query(`mobile`)", &req("/?mobile")));
    assert!(!matches("Query(`mobile`)", &req("/?mobile=true")));
}

#[test]
fn case_33_query_regexp() {
    let rule = "QueryRegexp(`q`, `^(traefik|nginx)$`)";
    assert!(matches(rule, &req("/?q=nginx&q=proxy")));
    assert!(!matches(rule, &req("/?q=NGINX")));
    assert!(!matches(rule, &req("/?q=haproxy")));
}

#[test]
fn case_34_query_regexp_key_case_sensitive() {
    let rule = "QueryRegexp(`q`, `^.*$`)";
    assert!(matches(rule, &req("/?q=TRAEFIK")));
    assert!(!matches(rule, &req("/?Q=x")));
}

#[test]
fn case_35_client_ip() {
    let rule = "ClientIP(`192.168.1.0/24`)";
    assert!(matches(rule, &req("/").ip("192.168.1.100")));
    assert!(matches(rule, &req("/").ip("::ffff:192.168.1.100")));
    assert!(!matches(rule, &req("/").ip("192.168.2.1")));
    assert!(!matches(rule, &req("/")));
    assert!(matches("ClientIP(`::1`)", &req("/").ip("::1")));
}

#[test]
fn case_36_client_ip_invalid() {
    assert!(is_err("ClientIP(`1`)"));
    assert!(is_err("ClientIP(`10.0.0.1`, `10.0.0.2`)"));
}

#[test]
fn case_37_and() {
    assert!(!matches(
        "Host(`localhost`) && PathPrefix(`/css`)",
        &req("http://localhost/js")
    ));
}

#[test]
fn case_38_and_binds_tighter() {
    let rule = "Host(`example.com`) || Host(`example.org`) && Path(`/css`)";
    assert!(matches(rule, &req("http://example.com/js")));
    assert!(!matches(rule, &req("http://example.org/js")));
}

#[test]
fn case_39_parentheses() {
    let rule = "(Host(`example.com`) || Host(`example.org`)) && Path(`/css`)";
    assert!(!matches(rule, &req("http://example.com/js")));
    assert!(matches(rule, &req("http://example.com/css")));
}

#[test]
fn case_40_not() {
    assert!(matches("!Host(`example.com`)", &req("http://example.org/")));
    assert!(!matches(
        "!Host(`example.com`)",
        &req("http://example.com/")
    ));
}

#[test]
fn case_41_not_over_group() {
    let rule = "!(Host(`example.com`) && !Path(`/css`))";
    assert!(matches(rule, &req("http://example.com/css")));
    assert!(!matches(rule, &req("http://example.com/js")));
    assert!(matches(rule, &req("http://example.org/js")));
}

#[test]
fn case_42_accepted_spellings() {
    for rule in [
        "PathPrefix(`/css`)",
        "PATHPREFIX(`/css`)",
        "pathprefix(`/css`)",
        "Pathprefix(`/css`)",
    ] {
        assert!(matches(rule, &req("/css")), "{rule}");
    }
    assert!(is_err("pathPrefix(`/css`)"));
    assert!(is_err("PathPREFIX(`/css`)"));
}

#[test]
fn case_43_unquoted_argument_and_unknown_matcher() {
    assert!(is_err("Host(example.com)"));
    assert!(is_err("Foo(`bar`)"));
    assert!(is_err("Host('example.com')"));
}

fn table(rules: &[(&str, i64, u32)]) -> RouterTable<&'static str> {
    let names = ["a", "b", "c", "d"];
    RouterTable::new(
        rules
            .iter()
            .enumerate()
            .map(|(i, &(rule, priority, tiebreak))| {
                let rule = parse_http(rule).unwrap();
                let priority =
                    viaduct_rules::effective_priority(priority, rule.default_priority()).unwrap();
                RouterEntry {
                    rule,
                    priority,
                    tiebreak,
                    value: names[i],
                }
            })
            .collect(),
    )
}

#[test]
fn case_44_longer_rule_wins() {
    let t = table(&[("PathPrefix(`/my`)", 0, 0), ("PathPrefix(`/mypath`)", 0, 0)]);
    assert_eq!(t.find(&req("/mypath").facts()), Some(&"b"));
    assert_eq!(t.find(&req("/my").facts()), Some(&"a"));
}

#[test]
fn case_45_regexp_router_longer_than_host_router() {
    let regexp = r"HostRegexp(`[a-z]+\.traefik\.com`)";
    let host = "Host(`foobar.traefik.com`)";
    assert_eq!(regexp.len(), 34);
    assert_eq!(host.len(), 26);
    let r = req("http://foobar.traefik.com/");
    assert_eq!(
        table(&[(host, 0, 0), (regexp, 0, 0)]).find(&r.facts()),
        Some(&"b")
    );
    assert_eq!(
        table(&[(host, 100, 0), (regexp, 0, 0)]).find(&r.facts()),
        Some(&"a")
    );
}

#[test]
fn case_46_ties_by_provider_precedence() {
    // Tiebreak = provider precedence index: kubernetescrd (1) before kubernetes (2), unknown
    // providers after every known one.
    let rule = "Host(`example.com`)";
    let r = req("http://example.com/");
    let crd_first = table(&[(rule, 0, 2), (rule, 0, 1)]);
    assert_eq!(crd_first.find(&r.facts()), Some(&"b"));
    let known_before_unknown = table(&[(rule, 0, u32::MAX), (rule, 0, 16)]);
    assert_eq!(known_before_unknown.find(&r.facts()), Some(&"b"));
    let priority_wins = table(&[(rule, 0, 1), (rule, 100, u32::MAX)]);
    assert_eq!(priority_wins.find(&r.facts()), Some(&"b"));
}

#[test]
fn priority_zero_means_rule_length_and_too_high_is_an_error() {
    use viaduct_rules::{effective_priority, MAX_USER_PRIORITY};
    assert_eq!(effective_priority(0, 26), Ok(26));
    assert_eq!(effective_priority(-5, 26), Ok(-5));
    assert_eq!(
        effective_priority(MAX_USER_PRIORITY, 26),
        Ok(MAX_USER_PRIORITY)
    );
    let err = effective_priority(MAX_USER_PRIORITY + 1, 26).unwrap_err();
    assert!(err.to_string().contains("too high"), "{err}");
}
