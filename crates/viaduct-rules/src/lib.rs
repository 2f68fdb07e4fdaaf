//! Placeholder with the final API shape; replaced by the real rule engine.
use std::borrow::Cow;
use std::net::IpAddr;

pub const MAX_USER_PRIORITY: i64 = i64::MAX - 1000;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(String);

#[derive(Debug, thiserror::Error)]
#[error("bad path")]
pub struct BadPath;

pub struct RequestFacts<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    pub query: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
}

#[derive(Debug, Clone)]
pub struct HttpRule {
    len: usize,
    prefix: String,
}

pub fn parse_http(rule: &str) -> Result<HttpRule, RuleError> {
    if rule.trim().is_empty() {
        return Err(RuleError("empty rule".into()));
    }
    let prefix = rule
        .strip_prefix("PathPrefix(`")
        .and_then(|r| r.strip_suffix("`)"))
        .unwrap_or("/")
        .to_string();
    Ok(HttpRule {
        len: rule.len(),
        prefix,
    })
}

impl HttpRule {
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        facts.path.starts_with(&self.prefix)
    }
    pub fn default_priority(&self) -> i64 {
        self.len as i64
    }
}

pub struct RouterTable<T> {
    entries: Vec<(HttpRule, T)>,
}

impl<T> RouterTable<T> {
    pub fn new<K: Ord>(mut entries: Vec<(HttpRule, i64, K, T)>) -> Self {
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.2.cmp(&b.2)));
        RouterTable {
            entries: entries.into_iter().map(|(r, _, _, t)| (r, t)).collect(),
        }
    }
    pub fn find(&self, facts: &RequestFacts<'_>) -> Option<&T> {
        self.entries
            .iter()
            .find(|(r, _)| r.matches(facts))
            .map(|(_, t)| t)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

pub fn canonical_host<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Cow<'a, str> {
    let raw = uri
        .authority()
        .map(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("");
    Cow::Owned(raw.split(':').next().unwrap_or("").to_ascii_lowercase())
}

pub fn routing_path(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    Ok(Cow::Borrowed(raw))
}

pub fn sanitize_path(raw: &str) -> Cow<'_, str> {
    Cow::Borrowed(raw)
}
