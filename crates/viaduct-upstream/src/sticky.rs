//! Sticky sessions by cookie, compatible with the cookies Traefik issues.
//!
//! Traefik names the cookie `_` + the first five hex digits of SHA-1(`_TRAEFIK_BACKEND_` +
//! service name) unless a name is configured, and stores in it the first 16 hex digits of
//! SHA-256 of the member's name (a server URL, or a child service name). Older Traefik
//! versions stored the name itself or its FNV-64 hash (once or twice); such cookies are
//! honoured and rewritten.

use std::collections::HashMap;

use http::header::{HeaderMap, HeaderValue, COOKIE};

const NAME_LENGTH: usize = 6;

/// A configured sticky cookie over a fixed list of members (servers or child services).
#[derive(Debug)]
pub struct Sticky {
    pub name: String,
    /// Cookie value → (member index, whether the value is a legacy one to rewrite).
    values: HashMap<String, (usize, bool)>,
    /// The `Set-Cookie` value that sticks a client to each member.
    set_cookies: Vec<HeaderValue>,
}

/// What the request's cookie says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StickyChoice {
    pub member: usize,
    /// The cookie used a legacy value: answer with a fresh one.
    pub rewrite: bool,
}

impl Sticky {
    /// `service` is the qualified service name (for the default cookie name), `members` the
    /// names whose hashes the cookie holds.
    pub fn new(config: &viaduct_config::StickyCookie, service: &str, members: &[String]) -> Sticky {
        let name = if config.name.is_empty() {
            default_name(service)
        } else {
            sanitize_name(&config.name)
        };
        let mut values = HashMap::new();
        let mut set_cookies = Vec::with_capacity(members.len());
        for (i, member) in members.iter().enumerate() {
            let hashed = sha256_prefix(member);
            let fnv = fnv64(member);
            // Later members do not override earlier ones, whatever the value kind.
            values.entry(fnv64(&fnv)).or_insert((i, true));
            values.entry(fnv).or_insert((i, true));
            values.entry(member.clone()).or_insert((i, true));
            values.insert(hashed.clone(), (i, false));
            set_cookies.push(set_cookie(config, &name, &hashed));
        }
        Sticky {
            name,
            values,
            set_cookies,
        }
    }

    /// The member the request's cookie names, if any.
    pub fn choice(&self, headers: &HeaderMap) -> Option<StickyChoice> {
        let value = cookie_value(headers, &self.name)?;
        self.values
            .get(value)
            .map(|&(member, rewrite)| StickyChoice { member, rewrite })
    }

    /// The `Set-Cookie` header value sticking the client to `member`.
    pub fn set_cookie(&self, member: usize) -> Option<&HeaderValue> {
        self.set_cookies.get(member)
    }
}

/// Traefik's default cookie name for a service.
pub fn default_name(service: &str) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("_TRAEFIK_BACKEND_{service}").as_bytes(),
    );
    let mut name = String::from("_");
    for byte in digest.as_ref() {
        let _ = write!(name, "{byte:02x}");
    }
    name.truncate(NAME_LENGTH);
    name
}

/// RFC 2616 token characters are kept, anything else becomes `_`.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '!' | '#' | '$' | '%' | '&' | '\'' | '*' | '+' | '-' | '.' | '^' | '`' | '|' | '~' => c,
            c if c.is_ascii_alphanumeric() => c,
            _ => '_',
        })
        .collect()
}

/// The cookie value sticking a client to `member` (a server URL or a child service name):
/// the first 16 hex digits of its SHA-256.
pub fn sha256_prefix(input: &str) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    let mut out = String::with_capacity(16);
    for byte in &digest.as_ref()[..8] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Go's `fnv.New64` (FNV-1, not 1a), formatted as Go's `%x` of the sum.
fn fnv64(input: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in input.bytes() {
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        hash ^= u64::from(byte);
    }
    format!("{hash:x}")
}

/// Go's `http.Cookie.String()` for the sticky cookie, attribute order included.
fn set_cookie(config: &viaduct_config::StickyCookie, name: &str, value: &str) -> HeaderValue {
    let mut s = format!("{name}={value}");
    let path = config.path.as_deref().unwrap_or("/");
    if !path.is_empty() {
        s.push_str("; Path=");
        s.push_str(path);
    }
    if !config.domain.is_empty() {
        s.push_str("; Domain=");
        s.push_str(config.domain.trim_start_matches('.'));
    }
    if config.max_age > 0 {
        s.push_str(&format!("; Max-Age={}", config.max_age));
    } else if config.max_age < 0 {
        s.push_str("; Max-Age=0");
    }
    if config.http_only {
        s.push_str("; HttpOnly");
    }
    if config.secure {
        s.push_str("; Secure");
    }
    match config.same_site.to_ascii_lowercase().as_str() {
        "none" => s.push_str("; SameSite=None"),
        "lax" => s.push_str("; SameSite=Lax"),
        "strict" => s.push_str("; SameSite=Strict"),
        _ => {}
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The first value of cookie `name` in the request's `Cookie` headers, unquoted.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> viaduct_config::StickyCookie {
        viaduct_config::StickyCookie::default()
    }

    #[test]
    fn default_names_match_traefik() {
        // Traefik's test vectors (pkg/server/cookie).
        assert_eq!(default_name("/my/BACKEND-v1.0~rc1"), "_5f7bc");
        assert_eq!(default_name("backend"), "_76eb3");
        assert_eq!(
            sanitize_name("/my/BACKEND-v1.0~rc1"),
            "_my_BACKEND-v1.0~rc1"
        );
        assert_eq!(
            sanitize_name("!#$%&'()*+-./:<=>?@[]^_`{|}~"),
            "!#$%&'__*+-._________^_`_|_~"
        );
    }

    #[test]
    fn values_are_sha256_prefixes_and_legacy_values_are_rewritten() {
        let members = vec![
            "http://10.0.0.1:80".to_string(),
            "http://10.0.0.2:80".to_string(),
        ];
        let sticky = Sticky::new(&config(), "svc@file", &members);
        let hashed = sha256_prefix(&members[1]);
        assert_eq!(hashed.len(), 16);
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {}={hashed}", sticky.name)).unwrap(),
        );
        assert_eq!(
            sticky.choice(&headers),
            Some(StickyChoice {
                member: 1,
                rewrite: false
            })
        );
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{}={}", sticky.name, fnv64(&members[0]))).unwrap(),
        );
        assert_eq!(
            sticky.choice(&headers),
            Some(StickyChoice {
                member: 0,
                rewrite: true
            })
        );
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{}=nope", sticky.name)).unwrap(),
        );
        assert_eq!(sticky.choice(&headers), None);
    }

    #[test]
    fn set_cookie_follows_gos_attribute_order() {
        let cfg = viaduct_config::StickyCookie {
            name: "lb".into(),
            secure: true,
            http_only: true,
            same_site: "Strict".into(),
            max_age: 60,
            path: Some("/app".into()),
            domain: ".example.com".into(),
        };
        let sticky = Sticky::new(&cfg, "svc", &["x".to_string()]);
        assert_eq!(
            sticky.set_cookie(0).unwrap().to_str().unwrap(),
            format!(
                "lb={}; Path=/app; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Strict",
                sha256_prefix("x")
            )
        );
    }
}
