//! The spans of one exchange, named and attributed as Traefik 3.7's: the entry point's server
//! span named after the method (`GET`), and `ReverseProxy` (client, the backend call), with the
//! OpenTelemetry HTTP semantic conventions. Routers with `traceVerbosity: detailed` add
//! `Router` and `Service` spans between them. Query values are `REDACTED` unless listed in
//! `safeQueryParams`.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, Version};

use super::{AttributeValue, SpanKind, SpanRecord, Trace};
use crate::access_log::UpstreamFacts;

/// What the spans describe.
#[derive(Debug)]
pub struct ExchangeFacts<'a> {
    pub entry_point: &'a str,
    pub method: &'a str,
    /// Path and query as received.
    pub path: &'a str,
    pub host: &'a str,
    pub tls: bool,
    pub version: Version,
    pub user_agent: Option<&'a HeaderValue>,
    pub client: SocketAddr,
    pub request_bytes: u64,
    pub status: u16,
    pub duration: Duration,
    /// (router, service)
    pub route: Option<(&'a str, &'a str)>,
    /// The router asked for `traceVerbosity: detailed`.
    pub detailed: bool,
    /// `tracing.safeQueryParams`.
    pub safe_query_params: &'a [String],
    /// The backend call, and when it started relative to the exchange.
    pub upstream: Option<(&'a UpstreamFacts, Duration)>,
}

impl Trace {
    /// The finished spans of an exchange.
    pub fn spans(&self, facts: &ExchangeFacts<'_>) -> Vec<SpanRecord> {
        let start = self.at(Duration::ZERO);
        let end = self.at(facts.duration);
        let span = |span_id, parent, name: Cow<'static, str>, kind, attributes, error| SpanRecord {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent,
            name,
            kind,
            start_unix_nanos: start,
            end_unix_nanos: end,
            attributes,
            error,
        };
        let text = |s: &str| AttributeValue::Text(s.to_string());
        let int = |i: i64| AttributeValue::Int(i);
        let redacted = redact_query(facts.path, facts.safe_query_params);
        let (url_path, query) = match redacted.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (redacted.as_str(), None),
        };
        let (server_address, server_port) = split_host(facts.host);
        let agent = facts.user_agent.and_then(|v| v.to_str().ok()).unwrap_or("");
        let client_ip = facts.client.ip().to_string();
        let client_port = i64::from(facts.client.port());
        let mut server = vec![
            ("entry_point", text(facts.entry_point)),
            ("http.request.method", text(facts.method)),
            (
                "network.protocol.version",
                text(protocol_version(facts.version)),
            ),
            ("http.request.body.size", int(facts.request_bytes as i64)),
            ("url.path", text(url_path)),
            ("url.scheme", text(if facts.tls { "https" } else { "http" })),
            ("user_agent.original", text(agent)),
            ("server.address", text(server_address)),
            ("client.address", text(&client_ip)),
            ("client.port", int(client_port)),
            ("network.peer.address", text(&client_ip)),
            ("network.peer.port", int(client_port)),
            ("http.response.status_code", int(i64::from(facts.status))),
        ];
        if let Some(query) = query {
            server.push(("url.query", text(query)));
        }
        if let Some(port) = server_port {
            server.push(("server.port", int(port)));
        }
        let mut spans = vec![span(
            self.entry_point,
            self.parent,
            Cow::Owned(facts.method.to_string()),
            SpanKind::Server,
            server,
            facts.status >= 500,
        )];
        let Some((router, service)) = facts.route else {
            return spans;
        };
        let mut call_parent = self.entry_point;
        if facts.detailed {
            spans.push(span(
                self.router,
                Some(self.entry_point),
                Cow::Borrowed("Router"),
                SpanKind::Internal,
                vec![
                    ("traefik.router.name", text(router)),
                    ("traefik.service.name", text(service)),
                ],
                false,
            ));
            spans.push(span(
                self.service,
                Some(self.router),
                Cow::Borrowed("Service"),
                SpanKind::Internal,
                vec![("traefik.service.name", text(service))],
                false,
            ));
            call_parent = self.service;
        }
        if let Some((upstream, offset)) = facts.upstream {
            let (address, port) = split_host(authority(&upstream.url));
            let scheme = upstream.url.split("://").next().unwrap_or("http");
            let full = format!("{}{}", upstream.url.trim_end_matches('/'), redacted);
            let mut client = vec![
                ("http.request.method", text(facts.method)),
                ("network.protocol.version", text("1.1")),
                ("url.full", text(&full)),
                ("url.scheme", text(scheme)),
                ("user_agent.original", text(agent)),
                ("server.address", text(address)),
                ("network.peer.address", text(address)),
                ("http.response.status_code", int(i64::from(upstream.status))),
            ];
            if let Some(port) = port {
                client.push(("server.port", int(port)));
                client.push(("network.peer.port", int(port)));
            }
            let mut call = span(
                self.proxy,
                Some(call_parent),
                Cow::Borrowed("ReverseProxy"),
                SpanKind::Client,
                client,
                upstream.status >= 400,
            );
            call.start_unix_nanos = self.at(offset);
            call.end_unix_nanos = self.at(offset + upstream.duration);
            spans.push(call);
        }
        spans
    }
}

/// The path with every query value not in `safe` replaced by `REDACTED`, as Traefik records
/// it.
fn redact_query(path: &str, safe: &[String]) -> String {
    let Some((path, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if !safe.iter().any(|s| s == key) => format!("{key}=REDACTED"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// `host:port` → (host, port); IPv6 literals lose their brackets.
fn split_host(host: &str) -> (&str, Option<i64>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((ip, port)) => (ip, port.parse().ok()),
            None => (rest.trim_end_matches(']'), None),
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_redacted_unless_safe() {
        assert_eq!(
            redact_query("/a?q=1&page=2&flag", &["page".into()]),
            "/a?q=REDACTED&page=2&flag"
        );
        assert_eq!(redact_query("/a", &[]), "/a");
    }
}
