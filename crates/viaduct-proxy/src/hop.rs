//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and must not be
//! forwarded to the next.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that are always connection-specific (the list Go's reverse proxy and Traefik use).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The protocol a request asks to upgrade to (`Connection: upgrade` + `Upgrade: x`).
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| has_token(v, "upgrade"));
    if wants {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Removes the headers named in `Connection`, except those `keep` accepts.
pub fn remove_connection_listed(headers: &mut HeaderMap, keep: impl Fn(&HeaderName) -> bool) {
    if !headers.contains_key(header::CONNECTION) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .filter(|name| !keep(name))
        .collect();
    for name in listed {
        headers.remove(name);
    }
}

/// Strips the hop-by-hop headers. `upgrade` (the protocol being switched to, if any) is
/// re-added with `Connection: Upgrade`; `TE: trailers` survives because gRPC needs it.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    // Most messages carry none of them: one pass over the (few) names is cheaper than nine
    // hashed removals.
    if upgrade.is_none() && !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let te_trailers = headers
        .get_all(header::TE)
        .iter()
        .any(|v| has_token(v, "trailers"));
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
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
    fn removes_listed_and_standard_hop_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers, deflate"),
            ("x-kept", "y"),
        ]);
        remove_connection_listed(&mut h, |_| false);
        strip_hop_by_hop(&mut h, None);
        assert!(h.get("x-secret").is_none());
        assert!(h.get("connection").is_none());
        assert!(h.get("keep-alive").is_none());
        assert_eq!(h.get("te").unwrap(), "trailers");
        assert_eq!(h.get("x-kept").unwrap(), "y");
    }

    #[test]
    fn upgrade_is_detected_and_kept() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        let up = requested_upgrade(&h);
        assert_eq!(up.as_ref().unwrap(), "websocket");
        strip_hop_by_hop(&mut h, up);
        assert_eq!(h.get("connection").unwrap(), "Upgrade");
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert!(requested_upgrade(&map(&[("upgrade", "websocket")])).is_none());
    }

    #[test]
    fn keep_predicate_protects_names() {
        let mut h = map(&[
            ("connection", "x-forwarded-for, x-other"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-other", "z"),
        ]);
        remove_connection_listed(&mut h, |n| n.as_str() == "x-forwarded-for");
        assert!(h.get("x-forwarded-for").is_some());
        assert!(h.get("x-other").is_none());
    }
}
