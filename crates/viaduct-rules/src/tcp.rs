//! TCP rules: `HostSNI`, `HostSNIRegexp`, `ClientIP`, `ALPN`.

use crate::error::RuleError;
use crate::facts::TcpFacts;
use crate::http_rule::{compile_regex, parse_ip_or_cidr};
use crate::http_v2::{template, Template, TemplateKind};
use crate::syntax::{self, Arg, Call};
use crate::tree::{resolve, Arity, MatcherSpec, Node, Resolved};
use crate::RuleSyntax;
use ipnet::IpNet;
use regex::Regex;
use std::borrow::Cow;

/// A compiled TCP router rule.
#[derive(Debug, Clone)]
pub struct TcpRule {
    text: Box<str>,
    root: Node<TcpMatcher>,
}

/// The ALPN protocol of the TLS-ALPN-01 ACME challenge, which TCP routers may not capture.
pub const ACME_TLS_ALPN: &str = "acme-tls/1";

/// Parses and compiles a TCP rule in the default (v3) syntax.
pub fn parse_tcp(rule: &str) -> Result<TcpRule, RuleError> {
    parse_tcp_with(RuleSyntax::V3, rule)
}

/// Parses and compiles a TCP rule; in v2 syntax `HostSNI`, `ClientIP` and `ALPN` take several
/// values (any may match) and `HostSNIRegexp` takes gorilla/mux host templates.
pub fn parse_tcp_with(syntax: RuleSyntax, rule: &str) -> Result<TcpRule, RuleError> {
    let expr = syntax::parse(rule)?;
    let root = Node::build(&expr, &mut |call| compile_call(syntax, call))?;
    Ok(TcpRule {
        text: rule.into(),
        root,
    })
}

impl TcpRule {
    pub fn matches(&self, facts: &TcpFacts<'_>) -> bool {
        self.root.eval(&|m: &TcpMatcher| m.matches(facts))
    }

    /// Traefik's default priority: the rule length in bytes, except −1 for the exact text
    /// ``HostSNI(`*`)`` so that the catch-all comes last.
    pub fn default_priority(&self) -> i64 {
        if &*self.text == "HostSNI(`*`)" {
            return -1;
        }
        i64::try_from(self.text.len()).unwrap_or(i64::MAX)
    }

    /// Whether the rule is the catch-all ``HostSNI(`*`)`` (any spelling or quoting): the only kind
    /// of rule that also takes non-TLS connections, and that yields to HTTPS routers on TLS ones.
    pub fn is_catch_all(&self) -> bool {
        matches!(self.root.single_leaf(), Some(TcpMatcher::AnySni))
    }

    /// The rule text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, Clone)]
enum TcpMatcher {
    AnySni,
    /// Lower-cased argument without trailing dot, and whether it had one.
    Sni(Box<str>, bool),
    SniWildcard(Box<str>),
    SniRegexp(Regex),
    ClientIp(IpNet),
    Alpn(Box<str>),
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    HostSni,
    HostSniRegexp,
    ClientIp,
    Alpn,
}

const V3_MATCHERS: &[MatcherSpec<Kind>] = &[
    spec("HostSNI", Arity::One, Kind::HostSni),
    spec("HostSNIRegexp", Arity::One, Kind::HostSniRegexp),
    spec("ClientIP", Arity::One, Kind::ClientIp),
    spec("ALPN", Arity::One, Kind::Alpn),
];

const V2_MATCHERS: &[MatcherSpec<Kind>] = &[
    spec("HostSNI", Arity::AtLeastOne, Kind::HostSni),
    spec("HostSNIRegexp", Arity::AtLeastOne, Kind::HostSniRegexp),
    spec("ClientIP", Arity::AtLeastOne, Kind::ClientIp),
    spec("ALPN", Arity::AtLeastOne, Kind::Alpn),
];

impl TcpMatcher {
    fn matches(&self, facts: &TcpFacts<'_>) -> bool {
        let sni = facts.sni.unwrap_or("");
        match self {
            TcpMatcher::AnySni => true,
            TcpMatcher::Sni(host, had_dot) => {
                !sni.is_empty()
                    && (sni.eq_ignore_ascii_case(host)
                        || (*had_dot
                            && sni
                                .strip_suffix('.')
                                .is_some_and(|s| s.eq_ignore_ascii_case(host))))
            }
            TcpMatcher::SniWildcard(suffix) => match sni.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
                None => false,
            },
            TcpMatcher::SniRegexp(re) => re.is_match(&lower(sni)),
            TcpMatcher::ClientIp(net) => facts
                .client_ip
                .is_some_and(|ip| net.contains(&ip.to_canonical())),
            TcpMatcher::Alpn(proto) => facts.alpn.contains(&&**proto),
        }
    }
}

fn compile_call(syntax: RuleSyntax, call: &Call) -> Result<Node<TcpMatcher>, RuleError> {
    let r = match syntax {
        RuleSyntax::V3 => resolve(V3_MATCHERS, "TCP", call)?,
        RuleSyntax::V2 => resolve(V2_MATCHERS, "TCP (v2)", call)?,
    };
    let leaves = r
        .args
        .iter()
        .map(|arg| compile_arg(syntax, &r, arg).map(Node::Leaf))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Node::Any(leaves))
}

fn compile_arg(
    syntax: RuleSyntax,
    r: &Resolved<'_, Kind>,
    arg: &Arg,
) -> Result<TcpMatcher, RuleError> {
    match r.kind {
        Kind::HostSni => host_sni(r, arg),
        Kind::HostSniRegexp => {
            if !arg.value.is_ascii() {
                return Err(r.invalid(arg, "non-ASCII characters are not allowed (use punycode)"));
            }
            if syntax == RuleSyntax::V2 {
                let pattern = match template(&arg.value, TemplateKind::Host)
                    .map_err(|e| r.invalid(arg, e))?
                {
                    Template::Literal(text) => format!("^{}$", regex::escape(&text)),
                    Template::Pattern(pattern) => pattern,
                };
                let templated = Arg {
                    value: pattern,
                    pos: arg.pos,
                };
                return compile_regex(r, &templated).map(TcpMatcher::SniRegexp);
            }
            compile_regex(r, arg).map(TcpMatcher::SniRegexp)
        }
        Kind::ClientIp => parse_ip_or_cidr(r, arg).map(TcpMatcher::ClientIp),
        Kind::Alpn if arg.value == ACME_TLS_ALPN => {
            Err(r.invalid(arg, "this protocol is reserved for the ACME TLS challenge"))
        }
        Kind::Alpn => Ok(TcpMatcher::Alpn(arg.value.as_str().into())),
    }
}

/// `HostSNI` argument: `*`, `*.suffix`, or something that looks like a host name or IP
/// (letters, digits, `_`, `.`, `-`, `:`).
fn host_sni(r: &Resolved<'_, Kind>, arg: &Arg) -> Result<TcpMatcher, RuleError> {
    if arg.value == "*" {
        return Ok(TcpMatcher::AnySni);
    }
    let lowered = arg.value.to_ascii_lowercase();
    let (wildcard, name) = match lowered.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lowered.as_str()),
    };
    let looks_like_host = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'));
    if !looks_like_host {
        return Err(r.invalid(arg, "not a valid host name or IP"));
    }
    let trimmed = name.strip_suffix('.');
    let host = trimmed.unwrap_or(name);
    if wildcard {
        return Ok(TcpMatcher::SniWildcard(host.into()));
    }
    Ok(TcpMatcher::Sni(host.into(), trimmed.is_some()))
}

fn lower(sni: &str) -> Cow<'_, str> {
    if sni.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(sni.to_ascii_lowercase())
    } else {
        Cow::Borrowed(sni)
    }
}

const fn spec<K>(name: &'static str, arity: Arity, kind: K) -> MatcherSpec<K> {
    MatcherSpec { name, arity, kind }
}
