//! What matchers look at: request facts computed once per request, and connection facts for TCP.

use std::borrow::Cow;
use std::net::IpAddr;

/// The parts of an HTTP request that rules match on, computed once by the proxy and shared by
/// every router it tries.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Canonical host: see [`canonical_host`]. Empty when the request names no host.
    pub host: &'a str,
    /// Routing path: see [`crate::routing_path`].
    pub path: &'a str,
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    /// Raw query string, without the `?`.
    pub query: Option<&'a str>,
    /// TCP peer address (after PROXY protocol), never a forwarded header.
    pub client_ip: Option<IpAddr>,
}

/// The parts of a TCP connection that TCP rules match on.
#[derive(Debug, Clone, Copy)]
pub struct TcpFacts<'a> {
    /// Server name from the TLS ClientHello; `None` for non-TLS connections.
    pub sni: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    /// Protocols the client offered in its ALPN extension.
    pub alpn: &'a [&'a str],
}

/// The host rules match against: the authority of an absolute-form request URI when it names a
/// host, else the `Host` header; port stripped (also from `[v6]:port`), trimmed, lower-cased,
/// trailing dot dropped. Borrows when nothing needs changing.
pub fn canonical_host<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Cow<'a, str> {
    let from_uri = uri
        .authority()
        .map(|a| a.as_str())
        .map(|a| a.rsplit_once('@').map_or(a, |(_, host)| host))
        .filter(|a| !a.is_empty());
    let raw = match from_uri {
        Some(authority) => authority,
        None => headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    };
    canonicalize_host(strip_port(raw))
}

/// Trims, lower-cases and drops one trailing dot; borrows when already canonical.
pub(crate) fn canonicalize_host(host: &str) -> Cow<'_, str> {
    let host = host.trim();
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Removes a port the way Traefik does (Go's `net.SplitHostPort`, falling back to stripping the
/// brackets of a bare `[v6]`, or keeping the text when it cannot be split).
fn strip_port(addr: &str) -> &str {
    if !addr.contains(':') {
        return addr;
    }
    if let Some(bracketed) = addr.strip_prefix('[') {
        if let Some((inside, after)) = bracketed.split_once(']') {
            if after.is_empty() || (after.starts_with(':') && !after[1..].contains(':')) {
                return inside;
            }
        }
        return addr;
    }
    match addr.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => addr,
    }
}
