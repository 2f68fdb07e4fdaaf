//! HTTP rules: the v3 matcher set, compilation and evaluation.

use crate::error::RuleError;
use crate::facts::RequestFacts;
use crate::go_regex::to_rust_syntax;
use crate::query::{first_query_value, query_values};
use crate::syntax::{self, Arg};
use crate::tree::{resolve, Arity, MatcherSpec, Node, Resolved};
use crate::{http_v2, RuleSyntax};
use http::HeaderName;
use ipnet::IpNet;
use regex::Regex;
use std::borrow::Cow;

/// A compiled HTTP router rule.
#[derive(Debug, Clone)]
pub struct HttpRule {
    text: Box<str>,
    root: Node<HttpMatcher>,
}

/// The hosts a rule can possibly match, when that set is finite: exact canonical hosts and
/// one-label wildcard suffixes (`example.com` for `*.example.com`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSet {
    pub exact: Vec<String>,
    pub wildcard_suffixes: Vec<String>,
}

/// Parses and compiles an HTTP rule in the default (v3) syntax.
pub fn parse_http(rule: &str) -> Result<HttpRule, RuleError> {
    parse_http_with(RuleSyntax::V3, rule)
}

/// Parses and compiles an HTTP rule in the given syntax.
pub fn parse_http_with(syntax: RuleSyntax, rule: &str) -> Result<HttpRule, RuleError> {
    let expr = syntax::parse(rule)?;
    let root = match syntax {
        RuleSyntax::V3 => Node::build(&expr, &mut |call| {
            compile_v3(resolve(V3_MATCHERS, "HTTP", call)?)
        })?,
        RuleSyntax::V2 => Node::build(&expr, &mut http_v2::compile_call)?,
    };
    Ok(HttpRule {
        text: rule.into(),
        root,
    })
}

impl HttpRule {
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        self.root.eval(&|m: &HttpMatcher| m.matches(facts))
    }

    /// Traefik's default priority: the length of the rule text in bytes.
    pub fn default_priority(&self) -> i64 {
        i64::try_from(self.text.len()).unwrap_or(i64::MAX)
    }

    /// The rule text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The finite set of hosts outside which this rule never matches, or `None` when it may
    /// match any host. Used by [`crate::RouterTable`] to index routers by host.
    pub fn required_hosts(&self) -> Option<HostSet> {
        required_hosts(&self.root)
    }
}

impl HostSet {
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard_suffixes.is_empty()
    }

    fn union(mut self, other: HostSet) -> HostSet {
        self.exact.extend(other.exact);
        self.wildcard_suffixes.extend(other.wildcard_suffixes);
        self
    }

    fn len(&self) -> usize {
        self.exact.len() + self.wildcard_suffixes.len()
    }
}

/// One compiled matcher call. Host values are stored lower-cased without a trailing dot.
#[derive(Debug, Clone)]
pub(crate) enum HttpMatcher {
    AnyHost,
    Host(Box<str>),
    /// `*.suffix`: exactly one non-empty label before `suffix`.
    HostWildcard(Box<str>),
    HostRegexp(Regex),
    Path(Box<str>),
    PathPrefix(Box<str>),
    PathRegexp(Regex),
    Method(Box<str>),
    /// `None` when the name is not a valid header name: such a header can never be present.
    Header(Option<HeaderName>, Box<[u8]>),
    HeaderRegexp(Option<HeaderName>, regex::bytes::Regex),
    Query(Box<str>, Box<[u8]>),
    QueryRegexp(Box<str>, regex::bytes::Regex),
    /// v2 `Query(k=v)`: the first value of `k` matches an anchored template.
    FirstQueryValue(Box<str>, regex::bytes::Regex),
    ClientIp(IpNet),
}

#[derive(Debug, Clone, Copy)]
enum V3 {
    Host,
    HostRegexp,
    Path,
    PathPrefix,
    PathRegexp,
    Method,
    Header,
    HeaderRegexp,
    Query,
    QueryRegexp,
    ClientIp,
}

const V3_MATCHERS: &[MatcherSpec<V3>] = &[
    spec("Host", Arity::One, V3::Host),
    spec("HostRegexp", Arity::One, V3::HostRegexp),
    spec("Path", Arity::One, V3::Path),
    spec("PathPrefix", Arity::One, V3::PathPrefix),
    spec("PathRegexp", Arity::One, V3::PathRegexp),
    spec("Method", Arity::One, V3::Method),
    spec("Header", Arity::Two, V3::Header),
    spec("HeaderRegexp", Arity::Two, V3::HeaderRegexp),
    spec("Query", Arity::OneOrTwo, V3::Query),
    spec("QueryRegexp", Arity::OneOrTwo, V3::QueryRegexp),
    spec("ClientIP", Arity::One, V3::ClientIp),
];

impl HttpMatcher {
    fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        match self {
            HttpMatcher::AnyHost => true,
            HttpMatcher::Host(host) => {
                let req = trim_dot(facts.host);
                !req.is_empty() && req.eq_ignore_ascii_case(host)
            }
            HttpMatcher::HostWildcard(suffix) => match trim_dot(facts.host).split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
                None => false,
            },
            HttpMatcher::HostRegexp(re) => re.is_match(&lower(facts.host)),
            HttpMatcher::Path(path) => facts.path == &**path,
            HttpMatcher::PathPrefix(prefix) => facts.path.starts_with(&**prefix),
            HttpMatcher::PathRegexp(re) => re.is_match(facts.path),
            HttpMatcher::Method(method) => facts.method.as_str() == &**method,
            HttpMatcher::Header(name, value) => header_values(facts, name)
                .into_iter()
                .flatten()
                .any(|v| v.as_bytes() == &**value),
            HttpMatcher::HeaderRegexp(name, re) => header_values(facts, name)
                .into_iter()
                .flatten()
                .any(|v| re.is_match(v.as_bytes())),
            HttpMatcher::Query(key, value) => facts
                .query
                .is_some_and(|q| query_values(q, key).any(|v| v.as_ref() == &**value)),
            HttpMatcher::QueryRegexp(key, re) => facts
                .query
                .is_some_and(|q| query_values(q, key).any(|v| re.is_match(&v))),
            HttpMatcher::FirstQueryValue(key, re) => {
                let first = facts.query.and_then(|q| first_query_value(q, key));
                match first {
                    Some(value) => re.is_match(&value),
                    None => false,
                }
            }
            HttpMatcher::ClientIp(net) => facts
                .client_ip
                .is_some_and(|ip| net.contains(&ip.to_canonical())),
        }
    }
}

fn compile_v3(r: Resolved<'_, V3>) -> Result<Node<HttpMatcher>, RuleError> {
    let first = &r.args[0];
    let matcher = match r.kind {
        V3::Host => host_matcher(&r, first, true)?,
        V3::HostRegexp => HttpMatcher::HostRegexp(compile_regex(&r, first)?),
        V3::Path => HttpMatcher::Path(slash_path(&r, first)?.into()),
        V3::PathPrefix => HttpMatcher::PathPrefix(slash_path(&r, first)?.into()),
        V3::PathRegexp => HttpMatcher::PathRegexp(compile_regex(&r, first)?),
        V3::Method => method_matcher(first),
        V3::Header => header_matcher(&r.args[0], &r.args[1]),
        V3::HeaderRegexp => header_regexp_matcher(&r, &r.args[0], &r.args[1])?,
        V3::Query => HttpMatcher::Query(
            first.value.as_str().into(),
            r.args
                .get(1)
                .map_or(&b""[..], |a| a.value.as_bytes())
                .into(),
        ),
        V3::QueryRegexp => match r.args.get(1) {
            Some(re) => {
                HttpMatcher::QueryRegexp(first.value.as_str().into(), compile_bytes_regex(&r, re)?)
            }
            None => HttpMatcher::Query(first.value.as_str().into(), Box::default()),
        },
        V3::ClientIp => HttpMatcher::ClientIp(parse_ip_or_cidr(&r, first)?),
    };
    Ok(Node::Leaf(matcher))
}

/// `Host` argument: ASCII only; `*` matches everything; `*.suffix` is a one-label wildcard
/// (v3 only); otherwise an exact host, compared case-insensitively without trailing dot.
pub(crate) fn host_matcher<K>(
    r: &Resolved<'_, K>,
    arg: &Arg,
    wildcards: bool,
) -> Result<HttpMatcher, RuleError> {
    if !arg.value.is_ascii() {
        return Err(r.invalid(arg, "non-ASCII characters are not allowed (use punycode)"));
    }
    let host = arg.value.to_ascii_lowercase();
    let host = trim_dot(&host);
    if !wildcards {
        return Ok(HttpMatcher::Host(host.into()));
    }
    if host == "*" {
        return Ok(HttpMatcher::AnyHost);
    }
    match host.strip_prefix("*.") {
        Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
            Ok(HttpMatcher::HostWildcard(suffix.into()))
        }
        _ if host.contains('*') => Err(r.invalid(
            arg,
            "a wildcard is only allowed as the whole first label (`*.example.com`)",
        )),
        _ => Ok(HttpMatcher::Host(host.into())),
    }
}

pub(crate) fn slash_path<'a, K>(r: &Resolved<'_, K>, arg: &'a Arg) -> Result<&'a str, RuleError> {
    if !arg.value.starts_with('/') {
        return Err(r.invalid(arg, "the path must start with `/`"));
    }
    Ok(&arg.value)
}

pub(crate) fn method_matcher(arg: &Arg) -> HttpMatcher {
    HttpMatcher::Method(arg.value.to_uppercase().into())
}

pub(crate) fn header_matcher(name: &Arg, value: &Arg) -> HttpMatcher {
    HttpMatcher::Header(
        HeaderName::from_bytes(name.value.as_bytes()).ok(),
        value.value.as_bytes().into(),
    )
}

pub(crate) fn header_regexp_matcher<K>(
    r: &Resolved<'_, K>,
    name: &Arg,
    re: &Arg,
) -> Result<HttpMatcher, RuleError> {
    Ok(HttpMatcher::HeaderRegexp(
        HeaderName::from_bytes(name.value.as_bytes()).ok(),
        compile_bytes_regex(r, re)?,
    ))
}

pub(crate) fn compile_regex<K>(r: &Resolved<'_, K>, arg: &Arg) -> Result<Regex, RuleError> {
    regex::RegexBuilder::new(&to_rust_syntax(&arg.value))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| r.invalid(arg, regex_reason(&e)))
}

pub(crate) fn compile_bytes_regex<K>(
    r: &Resolved<'_, K>,
    arg: &Arg,
) -> Result<regex::bytes::Regex, RuleError> {
    compile_bytes_pattern(r, arg, &to_rust_syntax(&arg.value))
}

pub(crate) fn compile_bytes_pattern<K>(
    r: &Resolved<'_, K>,
    arg: &Arg,
    pattern: &str,
) -> Result<regex::bytes::Regex, RuleError> {
    regex::bytes::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| r.invalid(arg, regex_reason(&e)))
}

/// Bounds the memory one rule's regexp may take, so a hostile rule cannot exhaust memory.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Collapses the multi-line message of the regex crate into one line for router status.
pub(crate) fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c == ' '))
        .collect();
    format!("invalid regular expression: {}", lines.join(" "))
}

pub(crate) fn parse_ip_or_cidr<K>(r: &Resolved<'_, K>, arg: &Arg) -> Result<IpNet, RuleError> {
    let text = arg.value.as_str();
    if text.contains('/') {
        return text
            .parse::<IpNet>()
            .map_err(|_| r.invalid(arg, "not a valid CIDR"));
    }
    text.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| r.invalid(arg, "not a valid IP address or CIDR"))
}

fn header_values<'a>(
    facts: &RequestFacts<'a>,
    name: &Option<HeaderName>,
) -> Option<http::header::GetAll<'a, http::HeaderValue>> {
    name.as_ref().map(|n| facts.headers.get_all(n))
}

fn trim_dot(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

fn lower(host: &str) -> Cow<'_, str> {
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

const fn spec<K>(name: &'static str, arity: Arity, kind: K) -> MatcherSpec<K> {
    MatcherSpec { name, arity, kind }
}

/// Sound over-approximation of the hosts a tree can match: a conjunction is restricted by its
/// most restrictive conjunct, a disjunction only if every branch is, a negation never.
fn required_hosts(node: &Node<HttpMatcher>) -> Option<HostSet> {
    match node {
        Node::Leaf(HttpMatcher::Host(host)) => Some(HostSet {
            exact: vec![host.to_string()],
            wildcard_suffixes: Vec::new(),
        }),
        Node::Leaf(HttpMatcher::HostWildcard(suffix)) => Some(HostSet {
            exact: Vec::new(),
            wildcard_suffixes: vec![suffix.to_string()],
        }),
        Node::Leaf(_) | Node::Not(_) => None,
        Node::All(terms) => terms
            .iter()
            .filter_map(required_hosts)
            .min_by_key(HostSet::len),
        Node::Any(terms) => terms
            .iter()
            .map(required_hosts)
            .try_fold(HostSet::default(), |acc, set| Some(acc.union(set?))),
    }
}
