//! Error messages name the problem and where it is.

#![allow(clippy::unwrap_used)]

use viaduct_rules::{parse_http, parse_tcp, RuleError, MAX_DEPTH};

fn message(rule: &str) -> String {
    parse_http(rule).unwrap_err().to_string()
}

#[test]
fn unknown_matcher_names_itself_and_its_position() {
    assert_eq!(
        message("Host(`a`) && Foo(`b`)"),
        "unknown HTTP matcher `Foo` at 13"
    );
    assert_eq!(
        parse_tcp("Path(`/`)").unwrap_err().to_string(),
        "unknown TCP matcher `Path` at 0"
    );
    assert_eq!(
        message("pathPrefix(`/`)"),
        "unknown HTTP matcher `pathPrefix` at 0"
    );
}

#[test]
fn syntax_errors_point_at_the_token() {
    assert_eq!(
        message("Host(example.com)"),
        "unexpected identifier `example` at 5, expected a string argument in backticks or double quotes"
    );
    assert_eq!(
        message("Host(`a`) Path(`/`)"),
        "unexpected identifier `Path` at 10, expected `&&`, `||` or end of rule"
    );
    assert_eq!(
        message("Host(`a`) &&"),
        "unexpected end of rule at 12, expected a matcher, `!` or `(`"
    );
    assert_eq!(
        message("(Host(`a`)"),
        "unexpected end of rule at 10, expected `)`"
    );
    assert_eq!(
        message("Host(`a`) & Path(`/`)"),
        "unexpected character `&` at 10, expected `&&`, `||` or end of rule"
    );
    assert_eq!(message(""), "empty rule");
    assert_eq!(message("   "), "empty rule");
}

#[test]
fn string_errors() {
    assert_eq!(
        message("Host('a')"),
        "single-quoted argument at 5: arguments are written in backticks or double quotes"
    );
    assert_eq!(message("Host(`a)"), "unterminated string starting at 5");
    assert_eq!(message("Host(\"a)"), "unterminated string starting at 5");
    assert_eq!(
        message("Host(\"a\\qb\")"),
        "invalid escape `\\q` in string at 7"
    );
    assert_eq!(
        message("Host(\"\\xff\")"),
        "string at 5 is not valid UTF-8 once unescaped"
    );
}

#[test]
fn argument_errors() {
    assert_eq!(
        message("Host(`a`, `b`)"),
        "matcher `Host` at 0 takes exactly one argument, got 2"
    );
    assert_eq!(
        message("Host()"),
        "matcher `Host` at 0 takes exactly one argument, got 0"
    );
    assert_eq!(
        message("Header(`X`)"),
        "matcher `Header` at 0 takes exactly two arguments, got 1"
    );
    assert_eq!(
        message("Query(`a`, `b`, `c`)"),
        "matcher `Query` at 0 takes one or two arguments, got 3"
    );
    assert_eq!(message("Path(``)"), "empty argument to matcher `Path` at 5");
    assert_eq!(
        message("Path(`css`)"),
        "invalid argument `css` to matcher `Path` at 5: the path must start with `/`"
    );
    assert_eq!(
        message("ClientIP(`1`)"),
        "invalid argument `1` to matcher `ClientIP` at 9: not a valid IP address or CIDR"
    );
    let regex = message("PathRegexp(`(`)");
    assert!(
        regex.starts_with(
            "invalid argument `(` to matcher `PathRegexp` at 11: invalid regular expression"
        ),
        "{regex}"
    );
    assert!(!regex.contains('\n'), "{regex}");
}

#[test]
fn go_string_literals() {
    let rule = parse_http("Path(\"/a\\tb\\u00e9\\x41\\101\")").unwrap();
    assert!(rule.as_str().starts_with("Path("));
    assert!(
        parse_http("Path(`/a`,)").is_ok(),
        "Go accepts a trailing comma"
    );
    assert!(parse_http("Path(\"/a\n\")").is_err());
    assert!(
        parse_http("Path(`/a\n`)").is_ok(),
        "raw strings may span lines"
    );
    assert!(parse_http("\n\tHost(`a`)\n  &&\n  Path(`/`)\n").is_ok());
}

#[test]
fn nesting_is_bounded() {
    let ok = format!(
        "{}Host(`a`){}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(parse_http(&ok).is_ok());
    let deep = format!(
        "{}Host(`a`){}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(matches!(parse_http(&deep), Err(RuleError::TooDeep { .. })));
    let nots = format!("{}Host(`a`)", "!".repeat(100_000));
    assert!(matches!(parse_http(&nots), Err(RuleError::TooDeep { .. })));
    let parens = "(".repeat(1_000_000);
    assert!(parse_http(&parens).is_err());
}

#[test]
fn long_flat_chains_do_not_nest() {
    let rule = vec!["Path(`/a`)"; 20_000].join(" || ");
    let rule = parse_http(&rule).unwrap();
    assert_eq!(rule.default_priority(), 20_000 * 10 + 19_999 * 4);
}

#[test]
fn odd_inputs_do_not_panic() {
    for rule in [
        "\u{0}",
        "é(`a`)",
        "Host(`a`)||",
        "!",
        ")",
        "Host(\"\\",
        "Host(\"\\u12",
        "Host(\"\\U0011ffff\")",
        "Host(\"\\ud800\")",
        "Host(\"\\777\")",
        "Host(\"\\0\")",
        "Host(`*.*`)",
        "Host(`a*b`)",
        "HostRegexp(`\\`)",
        "Query(`a`, `[`)",
        "Header(`bad header`, `x`)",
    ] {
        let _ = parse_http(rule);
        let _ = parse_tcp(rule);
    }
}
