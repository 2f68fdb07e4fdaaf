use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::GoDuration;

/// Options of one middleware type, kept as a JSON tree until the middleware is built.
/// The middleware crate gives each type its typed options.
pub type MiddlewareOptions = serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HttpConfig {
    pub routers: BTreeMap<String, Router>,
    pub services: BTreeMap<String, Service>,
    pub middlewares: BTreeMap<String, Middleware>,
    pub servers_transports: BTreeMap<String, ServersTransport>,
    /// Entry point defaults materialised by Traefik as models; accepted for compatibility.
    pub models: BTreeMap<String, serde_json::Value>,
}

impl HttpConfig {
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
            && self.services.is_empty()
            && self.middlewares.is_empty()
            && self.servers_transports.is_empty()
            && self.models.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Router {
    pub entry_points: Vec<String>,
    pub middlewares: Vec<String>,
    pub service: String,
    pub rule: String,
    /// `0` (or absent) means "the length of the rule".
    pub priority: i64,
    pub rule_syntax: Option<String>,
    pub tls: Option<RouterTls>,
    pub observability: Option<RouterObservability>,
    pub parent_refs: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RouterTls {
    pub options: String,
    pub cert_resolver: String,
    pub domains: Vec<Domain>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Domain {
    pub main: String,
    pub sans: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RouterObservability {
    pub access_logs: Option<bool>,
    pub metrics: Option<bool>,
    pub tracing: Option<bool>,
    pub trace_verbosity: Option<String>,
}

/// A service is exactly one of its kinds; the compiler reports a service that sets none
/// or several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
// Sections most services leave out are boxed: a configuration of 10,000 services is held
// whole more than once (per provider, merged), and inline they would triple its size.
pub struct Service {
    pub load_balancer: Option<LoadBalancer>,
    pub weighted: Option<Box<Weighted>>,
    pub mirroring: Option<Box<Mirroring>>,
    pub failover: Option<Box<Failover>>,
    pub highest_random_weight: Option<Box<HighestRandomWeight>>,
    /// Middlewares run after the router's (3.7).
    pub middlewares: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LoadBalancer {
    pub servers: Vec<Server>,
    pub strategy: Option<String>,
    pub sticky: Option<Box<Sticky>>,
    pub health_check: Option<Box<HealthCheck>>,
    pub passive_health_check: Option<Box<PassiveHealthCheck>>,
    pub pass_host_header: bool,
    pub response_forwarding: Option<Box<ResponseForwarding>>,
    pub servers_transport: Option<String>,
}

impl Default for LoadBalancer {
    fn default() -> Self {
        LoadBalancer {
            servers: Vec::new(),
            strategy: None,
            sticky: None,
            health_check: None,
            passive_health_check: None,
            pass_host_header: true,
            response_forwarding: None,
            servers_transport: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Server {
    pub url: String,
    /// Absent means 1.
    pub weight: Option<i64>,
    pub preserve_path: bool,
    /// Set by label providers (`loadbalancer.server.port`/`.scheme`) before the URL is known.
    pub port: Option<String>,
    pub scheme: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Sticky {
    pub cookie: Option<StickyCookie>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StickyCookie {
    pub name: String,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: String,
    pub max_age: i64,
    pub path: Option<String>,
    pub domain: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HealthCheck {
    pub scheme: String,
    pub mode: String,
    pub path: String,
    pub method: String,
    pub status: i64,
    pub port: i64,
    pub interval: Option<GoDuration>,
    pub unhealthy_interval: Option<GoDuration>,
    pub timeout: Option<GoDuration>,
    pub hostname: String,
    pub follow_redirects: Option<bool>,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PassiveHealthCheck {
    pub failure_window: Option<GoDuration>,
    pub max_failed_attempts: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ResponseForwarding {
    pub flush_interval: Option<GoDuration>,
}

/// An empty `healthCheck: {}` on a parent service: propagate children's health upward.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentHealthCheck {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Weighted {
    pub services: Vec<WeightedService>,
    pub sticky: Option<Sticky>,
    pub health_check: Option<ParentHealthCheck>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WeightedService {
    pub name: String,
    /// Absent means 1.
    pub weight: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HighestRandomWeight {
    pub services: Vec<WeightedService>,
    pub health_check: Option<ParentHealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Mirroring {
    pub service: String,
    pub mirror_body: bool,
    pub max_body_size: Option<i64>,
    pub mirrors: Vec<MirrorService>,
    pub health_check: Option<ParentHealthCheck>,
}

impl Default for Mirroring {
    fn default() -> Self {
        Mirroring {
            service: String::new(),
            mirror_body: true,
            max_body_size: None,
            mirrors: Vec::new(),
            health_check: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MirrorService {
    pub name: String,
    pub percent: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Failover {
    pub service: String,
    pub fallback: String,
    pub health_check: Option<ParentHealthCheck>,
    pub errors: Option<FailoverErrors>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FailoverErrors {
    pub status: Vec<String>,
    pub max_request_body_bytes: Option<i64>,
}

/// A middleware is exactly one of its types. Options stay untyped here; the middleware
/// crate decodes them when it builds the middleware, so a bad option disables only the
/// middleware (and the routers using it), never the whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Middleware {
    pub add_prefix: Option<MiddlewareOptions>,
    pub basic_auth: Option<MiddlewareOptions>,
    pub buffering: Option<MiddlewareOptions>,
    pub chain: Option<MiddlewareOptions>,
    pub circuit_breaker: Option<MiddlewareOptions>,
    pub compress: Option<MiddlewareOptions>,
    pub content_type: Option<MiddlewareOptions>,
    pub digest_auth: Option<MiddlewareOptions>,
    pub encoded_characters: Option<MiddlewareOptions>,
    pub errors: Option<MiddlewareOptions>,
    pub forward_auth: Option<MiddlewareOptions>,
    pub grpc_web: Option<MiddlewareOptions>,
    pub headers: Option<MiddlewareOptions>,
    pub ip_allow_list: Option<MiddlewareOptions>,
    pub ip_white_list: Option<MiddlewareOptions>,
    pub in_flight_req: Option<MiddlewareOptions>,
    #[serde(rename = "passTLSClientCert")]
    pub pass_tls_client_cert: Option<MiddlewareOptions>,
    pub plugin: Option<MiddlewareOptions>,
    pub rate_limit: Option<MiddlewareOptions>,
    pub redirect_regex: Option<MiddlewareOptions>,
    pub redirect_scheme: Option<MiddlewareOptions>,
    pub replace_path: Option<MiddlewareOptions>,
    pub replace_path_regex: Option<MiddlewareOptions>,
    pub retry: Option<MiddlewareOptions>,
    pub strip_prefix: Option<MiddlewareOptions>,
    pub strip_prefix_regex: Option<MiddlewareOptions>,
}

impl Middleware {
    /// The types this middleware sets, by their Traefik key (normally exactly one).
    pub fn kinds(&self) -> Vec<(&'static str, &MiddlewareOptions)> {
        let all: [(&'static str, &Option<MiddlewareOptions>); 26] = [
            ("addPrefix", &self.add_prefix),
            ("basicAuth", &self.basic_auth),
            ("buffering", &self.buffering),
            ("chain", &self.chain),
            ("circuitBreaker", &self.circuit_breaker),
            ("compress", &self.compress),
            ("contentType", &self.content_type),
            ("digestAuth", &self.digest_auth),
            ("encodedCharacters", &self.encoded_characters),
            ("errors", &self.errors),
            ("forwardAuth", &self.forward_auth),
            ("grpcWeb", &self.grpc_web),
            ("headers", &self.headers),
            ("ipAllowList", &self.ip_allow_list),
            ("ipWhiteList", &self.ip_white_list),
            ("inFlightReq", &self.in_flight_req),
            ("passTLSClientCert", &self.pass_tls_client_cert),
            ("plugin", &self.plugin),
            ("rateLimit", &self.rate_limit),
            ("redirectRegex", &self.redirect_regex),
            ("redirectScheme", &self.redirect_scheme),
            ("replacePath", &self.replace_path),
            ("replacePathRegex", &self.replace_path_regex),
            ("retry", &self.retry),
            ("stripPrefix", &self.strip_prefix),
            ("stripPrefixRegex", &self.strip_prefix_regex),
        ];
        all.into_iter()
            .filter_map(|(name, opt)| opt.as_ref().map(|o| (name, o)))
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServersTransport {
    pub server_name: String,
    pub insecure_skip_verify: bool,
    #[serde(rename = "rootCAs")]
    pub root_cas: Vec<String>,
    pub certificates: Vec<CertificateFiles>,
    pub cipher_suites: Vec<String>,
    pub min_version: String,
    pub max_version: String,
    /// Absent means Traefik's default (200 from the static default transport, 2 otherwise).
    pub max_idle_conns_per_host: Option<i64>,
    pub forwarding_timeouts: Option<ForwardingTimeouts>,
    #[serde(rename = "disableHTTP2")]
    pub disable_http2: bool,
    #[serde(rename = "peerCertURI")]
    pub peer_cert_uri: String,
    #[serde(rename = "peerCertSANs")]
    pub peer_cert_sans: Vec<serde_json::Value>,
    pub spiffe: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CertificateFiles {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ForwardingTimeouts {
    pub dial_timeout: Option<GoDuration>,
    pub response_header_timeout: Option<GoDuration>,
    pub idle_conn_timeout: Option<GoDuration>,
    pub read_idle_timeout: Option<GoDuration>,
    pub ping_timeout: Option<GoDuration>,
}
