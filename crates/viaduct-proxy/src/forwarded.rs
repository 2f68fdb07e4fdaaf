//! `X-Forwarded-*` and `X-Real-Ip`, exactly as Traefik writes them.

use std::net::IpAddr;

use http::header::{Entry, HeaderMap, HeaderName, HeaderValue};

use crate::entrypoint::EntryPointRuntime;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
const X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");

/// Headers only a trusted peer may send; from anyone else they are removed, including their
/// underscore spellings (`X_Forwarded_For`), which some backends treat as the same header.
const MANAGED: [&str; 12] = [
    "x-forwarded-proto",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-real-ip",
    "x-forwarded-scheme",
];

/// True for the headers the proxy manages (a `Connection` header may not remove them).
pub fn is_managed(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("x-") && MANAGED.contains(&name)
}

/// True for a header an untrusted peer may not send: a managed one or an underscore spelling.
fn is_spoofable(name: &HeaderName) -> bool {
    let name = name.as_str();
    if !name.starts_with("x-") && !name.starts_with("x_") {
        return false;
    }
    MANAGED.contains(&name)
        || (name.contains('_') && MANAGED.contains(&name.replace('_', "-").as_str()))
}

/// What the forwarded headers are computed from.
pub struct ForwardFacts<'a> {
    pub peer: IpAddr,
    /// `peer` as a header value, computed once per connection.
    pub peer_value: &'a HeaderValue,
    pub tls: bool,
    pub websocket: bool,
    /// The request's host as received (`Host` header or URI authority), port included.
    pub host: Option<&'a HeaderValue>,
}

/// Rewrites the forwarded headers of a routed request, all but `X-Forwarded-For`
/// ([`append_forwarded_for`], when the request leaves).
pub fn rewrite(headers: &mut HeaderMap, ep: &EntryPointRuntime, facts: &ForwardFacts<'_>) {
    let trusted = ep.trusts(facts.peer);
    if !trusted {
        remove_managed(headers);
    }

    // One lookup per header (`entry`), not a lookup and then an insertion.
    if let Entry::Vacant(slot) = headers.entry(X_REAL_IP) {
        slot.insert(facts.peer_value.clone());
    }

    let proto = match headers.entry(X_FORWARDED_PROTO) {
        Entry::Occupied(existing) => existing.get().clone(),
        Entry::Vacant(slot) => {
            let proto = match (facts.websocket, facts.tls) {
                (true, true) => "wss",
                (true, false) => "ws",
                (false, true) => "https",
                (false, false) => "http",
            };
            slot.insert(HeaderValue::from_static(proto)).clone()
        }
    };

    if let Entry::Vacant(slot) = headers.entry(X_FORWARDED_PORT) {
        slot.insert(forwarded_port(facts, &proto, &ep.port_value));
    }

    if let Some(host) = facts.host.filter(|h| !h.is_empty()) {
        if let Entry::Vacant(slot) = headers.entry(X_FORWARDED_HOST) {
            slot.insert(host.clone());
        }
    }

    headers.insert(X_FORWARDED_SERVER, ep.hostname.clone());

    if ep.add_x_forwarded_scheme_headers {
        headers.insert(X_FORWARDED_SCHEME, proto.clone());
        headers.insert(X_SCHEME, proto);
    }
}

fn remove_managed(headers: &mut HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_spoofable(k))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}

/// `X-Forwarded-For`: earlier hops folded into one line, then the peer (Go's reverse proxy).
pub fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let mut prior = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
    if prior.peek().is_none() {
        headers.insert(X_FORWARDED_FOR, peer.clone());
        return;
    }
    let mut joined = Vec::with_capacity(64);
    for v in prior {
        joined.extend_from_slice(v.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(peer.as_bytes());
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(X_FORWARDED_FOR, v);
    }
}

fn forwarded_port(
    facts: &ForwardFacts<'_>,
    proto: &HeaderValue,
    own_port: &HeaderValue,
) -> HeaderValue {
    if let Some(port) = facts.host.and_then(|h| h.to_str().ok()).and_then(port_of) {
        if port.as_bytes() == own_port.as_bytes() {
            return own_port.clone();
        }
        if let Ok(port) = HeaderValue::from_str(port) {
            return port;
        }
    }
    if proto == "https" || proto == "wss" || facts.tls {
        HeaderValue::from_static("443")
    } else {
        HeaderValue::from_static("80")
    }
}

/// The port of `host[:port]` / `[v6]:port`, if any.
/// That is the digits after the last `:`, when nothing but digits follows it (so `[v6]`
/// alone has no port). One backward scan: this runs on every request.
fn port_of(host: &str) -> Option<&str> {
    let digits = host.bytes().rev().take_while(u8::is_ascii_digit).count();
    let colon = host.len().checked_sub(digits + 1)?;
    (digits > 0 && host.as_bytes()[colon] == b':').then(|| &host[colon + 1..])
}

/// A peer address as a header value (IPv4-mapped IPv6 shown as IPv4).
pub fn ip_value(ip: IpAddr) -> HeaderValue {
    let ip = crate::entrypoint::normalize(ip);
    HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static(""))
}
#[cfg(test)]
mod tests {
    use super::*;
    use viaduct_config::static_config::{EntryPoint, ForwardedHeaders};

    fn ep(trusted: &[&str]) -> EntryPointRuntime {
        let config = EntryPoint {
            address: ":80".into(),
            forwarded_headers: ForwardedHeaders {
                trusted_ips: trusted.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        EntryPointRuntime::new("web", 0, &config).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn untrusted_peer_headers_are_replaced() {
        let mut h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x_forwarded_host", "evil"),
            ("x-custom", "kept"),
        ]);
        let host = HeaderValue::from_static("example.com:8080");
        let facts = ForwardFacts {
            peer: "10.0.0.1".parse().unwrap(),
            peer_value: &ip_value("10.0.0.1".parse().unwrap()),
            tls: false,
            websocket: false,
            host: Some(&host),
        };
        rewrite(&mut h, &ep(&[]), &facts);
        assert!(
            h.get("x-forwarded-for").is_none(),
            "removed until the request leaves"
        );
        append_forwarded_for(&mut h, facts.peer_value);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-real-ip"], "10.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com:8080");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert!(h.get("x_forwarded_host").is_none());
        assert!(h.get("x-forwarded-server").is_some());
        assert_eq!(h["x-custom"], "kept");
    }

    #[test]
    fn trusted_peer_headers_are_kept_and_appended() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x-real-ip", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let host = HeaderValue::from_static("example.com");
        let facts = ForwardFacts {
            peer: "10.0.0.1".parse().unwrap(),
            peer_value: &ip_value("10.0.0.1".parse().unwrap()),
            tls: false,
            websocket: false,
            host: Some(&host),
        };
        rewrite(&mut h, &ep(&["10.0.0.0/8"]), &facts);
        append_forwarded_for(&mut h, facts.peer_value);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 10.0.0.1");
        assert_eq!(h["x-real-ip"], "1.1.1.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "443");
    }

    #[test]
    fn websocket_proto_and_default_port() {
        let mut h = HeaderMap::new();
        let facts = ForwardFacts {
            peer: "::1".parse().unwrap(),
            peer_value: &ip_value("::1".parse().unwrap()),
            tls: false,
            websocket: true,
            host: None,
        };
        rewrite(&mut h, &ep(&[]), &facts);
        append_forwarded_for(&mut h, facts.peer_value);
        assert_eq!(h["x-forwarded-proto"], "ws");
        assert_eq!(h["x-forwarded-port"], "80");
        assert_eq!(h["x-forwarded-for"], "::1");
        assert!(h.get("x-forwarded-host").is_none());
    }

    #[test]
    fn ports() {
        assert_eq!(port_of("a.com:81"), Some("81"));
        assert_eq!(port_of("[::1]:82"), Some("82"));
        assert_eq!(port_of("[::1]"), None);
        assert_eq!(port_of("a.com"), None);
        assert_eq!(port_of("a.com:"), None);
        assert_eq!(port_of("8080"), None);
        assert_eq!(port_of(":80"), Some("80"));
        assert_eq!(port_of("[::1:2]"), None);
    }
}
