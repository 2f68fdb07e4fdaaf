//! The `traefik.ingress.kubernetes.io/*` annotations: `router.*` on an Ingress, `service.*` on
//! a Service. Keys are matched case-insensitively, as Traefik's label parser does.

use std::collections::BTreeMap;

use viaduct_config::dynamic::{Domain, RouterObservability, RouterTls, Sticky, StickyCookie};

/// The annotations' common prefix.
pub const ANNOTATION_PREFIX: &str = "traefik.ingress.kubernetes.io/";

/// What an Ingress's `router.*` annotations set on each of its routers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouterAnnotations {
    pub entry_points: Vec<String>,
    pub middlewares: Vec<String>,
    pub priority: i64,
    pub path_matcher: Option<String>,
    pub rule_syntax: Option<String>,
    pub tls: Option<RouterTls>,
    pub observability: Option<RouterObservability>,
}

/// What a Service's `service.*` annotations set on its load balancer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceAnnotations {
    pub pass_host_header: Option<bool>,
    pub servers_scheme: Option<String>,
    pub servers_transport: Option<String>,
    pub sticky: Option<Sticky>,
    pub middlewares: Vec<String>,
}

/// An annotation whose value does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("annotation {key}: {value:?} is not {expected}")]
pub struct AnnotationError {
    pub key: String,
    pub value: String,
    pub expected: &'static str,
}

impl RouterAnnotations {
    pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Self, AnnotationError> {
        let mut parsed = RouterAnnotations::default();
        for (key, suffix, value) in ours(annotations, "router.") {
            match suffix.as_str() {
                "entrypoints" => parsed.entry_points = list(value),
                "middlewares" => parsed.middlewares = list(value),
                "priority" => parsed.priority = number(&key, value)?,
                "pathmatcher" => parsed.path_matcher = Some(value.trim().to_string()),
                "rulesyntax" => parsed.rule_syntax = Some(value.trim().to_string()),
                "tls" => {
                    if boolean(&key, value)? {
                        parsed.tls.get_or_insert_with(RouterTls::default);
                    }
                }
                "tls.certresolver" => {
                    parsed
                        .tls
                        .get_or_insert_with(RouterTls::default)
                        .cert_resolver = value.trim().to_string();
                }
                "tls.options" => {
                    parsed.tls.get_or_insert_with(RouterTls::default).options =
                        value.trim().to_string();
                }
                "observability.accesslogs" => {
                    observability(&mut parsed).access_logs = Some(boolean(&key, value)?)
                }
                "observability.metrics" => {
                    observability(&mut parsed).metrics = Some(boolean(&key, value)?)
                }
                "observability.tracing" => {
                    observability(&mut parsed).tracing = Some(boolean(&key, value)?)
                }
                "observability.traceverbosity" => {
                    observability(&mut parsed).trace_verbosity = Some(value.trim().to_string())
                }
                other => match tls_domain(other) {
                    Some((index, field)) => {
                        let domain = domain_at(&mut parsed, index);
                        match field {
                            "main" => domain.main = value.trim().to_string(),
                            _ => domain.sans = list(value),
                        }
                    }
                    None => {
                        tracing::debug!(annotation = %key, "annotation not supported; ignored")
                    }
                },
            }
        }
        Ok(parsed)
    }
}

impl ServiceAnnotations {
    pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Self, AnnotationError> {
        let mut parsed = ServiceAnnotations::default();
        for (key, suffix, value) in ours(annotations, "service.") {
            match suffix.as_str() {
                "passhostheader" => parsed.pass_host_header = Some(boolean(&key, value)?),
                "serversscheme" => parsed.servers_scheme = Some(value.trim().to_string()),
                "serverstransport" => parsed.servers_transport = Some(value.trim().to_string()),
                "middlewares" => parsed.middlewares = list(value),
                "sticky.cookie" => {
                    if boolean(&key, value)? {
                        cookie(&mut parsed);
                    }
                }
                "sticky.cookie.name" => cookie(&mut parsed).name = value.trim().to_string(),
                "sticky.cookie.secure" => cookie(&mut parsed).secure = boolean(&key, value)?,
                "sticky.cookie.httponly" => cookie(&mut parsed).http_only = boolean(&key, value)?,
                "sticky.cookie.samesite" => {
                    cookie(&mut parsed).same_site = value.trim().to_string()
                }
                "sticky.cookie.maxage" => cookie(&mut parsed).max_age = number(&key, value)?,
                "sticky.cookie.path" => cookie(&mut parsed).path = Some(value.trim().to_string()),
                "sticky.cookie.domain" => cookie(&mut parsed).domain = value.trim().to_string(),
                _ => tracing::debug!(annotation = %key, "annotation not supported; ignored"),
            }
        }
        Ok(parsed)
    }
}

fn observability(parsed: &mut RouterAnnotations) -> &mut RouterObservability {
    parsed
        .observability
        .get_or_insert_with(RouterObservability::default)
}

/// `tls.domains.<n>.main|sans` → `(n, field)`; indexes beyond a small bound are refused so
/// an annotation cannot make a huge list.
fn tls_domain(suffix: &str) -> Option<(usize, &str)> {
    let rest = suffix.strip_prefix("tls.domains.")?;
    let (index, field) = rest.split_once('.')?;
    let index: usize = index.parse().ok().filter(|i| *i < 100)?;
    matches!(field, "main" | "sans").then_some((index, field))
}

fn domain_at(parsed: &mut RouterAnnotations, index: usize) -> &mut Domain {
    let domains = &mut parsed.tls.get_or_insert_with(RouterTls::default).domains;
    if domains.len() <= index {
        domains.resize_with(index + 1, Domain::default);
    }
    &mut domains[index]
}

fn cookie(parsed: &mut ServiceAnnotations) -> &mut StickyCookie {
    parsed
        .sticky
        .get_or_insert_with(Sticky::default)
        .cookie
        .get_or_insert_with(StickyCookie::default)
}

/// `(key, lower-case suffix after the prefix and `section`, value)` of our annotations.
fn ours<'a>(
    annotations: &'a BTreeMap<String, String>,
    section: &'a str,
) -> impl Iterator<Item = (String, String, &'a str)> + 'a {
    annotations.iter().filter_map(move |(key, value)| {
        let lower = key.to_ascii_lowercase();
        let suffix = lower
            .strip_prefix(ANNOTATION_PREFIX)?
            .strip_prefix(section)?;
        Some((key.clone(), suffix.to_string(), value.as_str()))
    })
}

/// A comma-separated list, as Traefik's parser splits slices.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

fn boolean(key: &str, value: &str) -> Result<bool, AnnotationError> {
    // Go's strconv.ParseBool spellings.
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(AnnotationError {
            key: key.to_string(),
            value: value.to_string(),
            expected: "a boolean",
        }),
    }
}

fn number(key: &str, value: &str) -> Result<i64, AnnotationError> {
    value.trim().parse().map_err(|_| AnnotationError {
        key: key.to_string(),
        value: value.to_string(),
        expected: "an integer",
    })
}
