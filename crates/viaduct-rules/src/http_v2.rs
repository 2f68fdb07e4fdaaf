//! The deprecated v2 rule syntax (`ruleSyntax: v2`): multi-value matchers, `Headers*`,
//! `HostHeader`, `Query(k=v)` and gorilla/mux `{name:regexp}` templates.

use crate::error::RuleError;
use crate::go_regex::to_rust_syntax;
use crate::http_rule::{
    compile_bytes_pattern, header_matcher, header_regexp_matcher, host_matcher, method_matcher,
    parse_ip_or_cidr, regex_reason, slash_path, HttpMatcher, REGEX_SIZE_LIMIT,
};
use crate::syntax::{Arg, Call};
use crate::tree::{resolve, Arity, MatcherSpec, Node, Resolved};

#[derive(Debug, Clone, Copy)]
enum V2 {
    Host,
    HostRegexp,
    Path,
    PathPrefix,
    Method,
    Headers,
    HeadersRegexp,
    Query,
    ClientIp,
}

const V2_MATCHERS: &[MatcherSpec<V2>] = &[
    spec("Host", Arity::AtLeastOne, V2::Host),
    spec("HostHeader", Arity::AtLeastOne, V2::Host),
    spec("HostRegexp", Arity::AtLeastOne, V2::HostRegexp),
    spec("Path", Arity::AtLeastOne, V2::Path),
    spec("PathPrefix", Arity::AtLeastOne, V2::PathPrefix),
    spec("Method", Arity::AtLeastOne, V2::Method),
    spec("Headers", Arity::Pairs, V2::Headers),
    spec("HeadersRegexp", Arity::Pairs, V2::HeadersRegexp),
    spec("Query", Arity::AtLeastOne, V2::Query),
    spec("ClientIP", Arity::AtLeastOne, V2::ClientIp),
];

/// Which gorilla/mux template flavour: the default variable pattern and end anchoring differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplateKind {
    Host,
    Path,
    PathPrefix,
    QueryValue,
}

/// A compiled gorilla/mux template: a literal when it has no variables, else a regexp.
pub(crate) enum Template {
    Literal(String),
    Pattern(String),
}

pub(crate) fn compile_call(call: &Call) -> Result<Node<HttpMatcher>, RuleError> {
    let r = resolve(V2_MATCHERS, "HTTP (v2)", call)?;
    let each = |f: &dyn Fn(&Arg) -> Result<HttpMatcher, RuleError>| {
        r.args
            .iter()
            .map(|a| f(a).map(Node::Leaf))
            .collect::<Result<Vec<_>, _>>()
    };
    let pairs = |f: &dyn Fn(&Arg, &Arg) -> Result<HttpMatcher, RuleError>| {
        r.args
            .chunks_exact(2)
            .map(|kv| f(&kv[0], &kv[1]).map(Node::Leaf))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match r.kind {
        V2::Host => Node::Any(each(&|a| host_matcher(&r, a, false))?),
        V2::HostRegexp => Node::Any(each(&|a| host_regexp(&r, a))?),
        V2::Path => Node::Any(each(&|a| path_template(&r, a, TemplateKind::Path))?),
        V2::PathPrefix => Node::Any(each(&|a| path_template(&r, a, TemplateKind::PathPrefix))?),
        V2::Method => Node::Any(each(&|a| Ok(method_matcher(a)))?),
        V2::Headers => Node::All(pairs(&|k, v| Ok(header_matcher(k, v)))?),
        V2::HeadersRegexp => Node::All(pairs(&|k, v| header_regexp_matcher(&r, k, v))?),
        V2::Query => Node::All(each(&|a| query_template(&r, a))?),
        V2::ClientIp => Node::Any(each(&|a| {
            parse_ip_or_cidr(&r, a).map(HttpMatcher::ClientIp)
        })?),
    })
}

/// Translates a gorilla/mux template (`/users/{id:[0-9]+}`) into an anchored regexp: literal
/// text is quoted, `{name}` takes the kind's default pattern, `{name:re}` takes `re`.
pub(crate) fn template(tpl: &str, kind: TemplateKind) -> Result<Template, String> {
    let braces = brace_spans(tpl)?;
    if braces.is_empty() && kind != TemplateKind::QueryValue {
        return Ok(Template::Literal(tpl.to_owned()));
    }
    let default_pattern = match kind {
        TemplateKind::Host => "[^.]+",
        TemplateKind::QueryValue => ".*",
        TemplateKind::Path | TemplateKind::PathPrefix => "[^/]+",
    };
    let mut pattern = String::from("^");
    let mut end = 0;
    for (open, close) in braces {
        pattern.push_str(&regex::escape(&tpl[end..open]));
        let tag = &tpl[open + 1..close];
        let (name, patt) = tag.split_once(':').unwrap_or((tag, default_pattern));
        if name.is_empty() || patt.is_empty() {
            return Err(format!("missing name or pattern in `{{{tag}}}`"));
        }
        let patt = to_rust_syntax(patt);
        let alone = regex::RegexBuilder::new(&patt)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| regex_reason(&e))?;
        if alone.captures_len() != 1 {
            return Err("capture groups are not allowed in templates: use (?:pattern)".into());
        }
        pattern.push_str("(?:");
        pattern.push_str(&patt);
        pattern.push(')');
        end = close + 1;
    }
    pattern.push_str(&regex::escape(&tpl[end..]));
    if kind == TemplateKind::QueryValue && tpl.is_empty() {
        pattern.push_str(default_pattern);
    }
    if kind != TemplateKind::PathPrefix {
        pattern.push('$');
    }
    Ok(Template::Pattern(pattern))
}

fn host_regexp(r: &Resolved<'_, V2>, arg: &Arg) -> Result<HttpMatcher, RuleError> {
    if !arg.value.is_ascii() {
        return Err(r.invalid(arg, "non-ASCII characters are not allowed (use punycode)"));
    }
    let pattern = match template(&arg.value, TemplateKind::Host).map_err(|e| r.invalid(arg, e))? {
        Template::Literal(text) => format!("^{}$", regex::escape(&text.to_ascii_lowercase())),
        Template::Pattern(pattern) => pattern,
    };
    build_regex(r, arg, &pattern).map(HttpMatcher::HostRegexp)
}

fn path_template(
    r: &Resolved<'_, V2>,
    arg: &Arg,
    kind: TemplateKind,
) -> Result<HttpMatcher, RuleError> {
    slash_path(r, arg)?;
    match template(&arg.value, kind).map_err(|e| r.invalid(arg, e))? {
        Template::Literal(text) if kind == TemplateKind::Path => Ok(HttpMatcher::Path(text.into())),
        Template::Literal(text) => Ok(HttpMatcher::PathPrefix(text.into())),
        Template::Pattern(pattern) => build_regex(r, arg, &pattern).map(HttpMatcher::PathRegexp),
    }
}

/// `Query(k=v)`: the first value of `k` must match the template `v`; `k=` only needs `k`.
fn query_template(r: &Resolved<'_, V2>, arg: &Arg) -> Result<HttpMatcher, RuleError> {
    let Some((key, value)) = arg.value.split_once('=') else {
        return Err(r.invalid(arg, "expected `key=value`"));
    };
    let pattern = match template(value, TemplateKind::QueryValue).map_err(|e| r.invalid(arg, e))? {
        Template::Literal(text) => format!("^{}$", regex::escape(&text)),
        Template::Pattern(pattern) => pattern,
    };
    let re = compile_bytes_pattern(r, arg, &pattern)?;
    Ok(HttpMatcher::FirstQueryValue(key.into(), re))
}

fn build_regex(r: &Resolved<'_, V2>, arg: &Arg, pattern: &str) -> Result<regex::Regex, RuleError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| r.invalid(arg, regex_reason(&e)))
}

/// Top-level `{…}` spans as (open, close) byte indices; nested braces belong to the pattern.
fn brace_spans(tpl: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut spans = Vec::new();
    let mut level = 0usize;
    let mut open = 0;
    for (i, b) in tpl.bytes().enumerate() {
        match b {
            b'{' => {
                if level == 0 {
                    open = i;
                }
                level += 1;
            }
            b'}' => {
                level = level
                    .checked_sub(1)
                    .ok_or_else(|| format!("unbalanced braces in `{tpl}`"))?;
                if level == 0 {
                    spans.push((open, i));
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err(format!("unbalanced braces in `{tpl}`"));
    }
    Ok(spans)
}

const fn spec<K>(name: &'static str, arity: Arity, kind: K) -> MatcherSpec<K> {
    MatcherSpec { name, arity, kind }
}
