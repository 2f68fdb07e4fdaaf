use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CertificateFiles, Domain, ParentHealthCheck, WeightedService};
use crate::GoDuration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpConfig {
    pub routers: BTreeMap<String, TcpRouter>,
    pub services: BTreeMap<String, TcpService>,
    pub middlewares: BTreeMap<String, TcpMiddleware>,
    pub servers_transports: BTreeMap<String, TcpServersTransport>,
}

impl TcpConfig {
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
            && self.services.is_empty()
            && self.middlewares.is_empty()
            && self.servers_transports.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpRouter {
    pub entry_points: Vec<String>,
    pub middlewares: Vec<String>,
    pub service: String,
    pub rule: String,
    pub priority: i64,
    pub rule_syntax: Option<String>,
    pub tls: Option<TcpRouterTls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpRouterTls {
    pub passthrough: bool,
    pub options: String,
    pub cert_resolver: String,
    pub domains: Vec<Domain>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpService {
    pub load_balancer: Option<TcpLoadBalancer>,
    pub weighted: Option<TcpWeighted>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpLoadBalancer {
    pub servers: Vec<TcpServer>,
    pub servers_transport: Option<String>,
    pub health_check: Option<serde_json::Value>,
    /// Deprecated in favour of the servers transport.
    pub proxy_protocol: Option<ProxyProtocolVersion>,
    /// Deprecated in favour of the servers transport.
    pub termination_delay: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpServer {
    pub address: String,
    pub tls: bool,
    pub weight: Option<i64>,
    pub port: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProxyProtocolVersion {
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpWeighted {
    pub services: Vec<WeightedService>,
    pub health_check: Option<ParentHealthCheck>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpMiddleware {
    pub in_flight_conn: Option<serde_json::Value>,
    pub ip_allow_list: Option<serde_json::Value>,
    pub ip_white_list: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpServersTransport {
    pub dial_timeout: Option<GoDuration>,
    pub dial_keep_alive: Option<GoDuration>,
    pub termination_delay: Option<GoDuration>,
    pub proxy_protocol: Option<ProxyProtocolVersion>,
    pub tls: Option<TcpClientTls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TcpClientTls {
    pub server_name: String,
    pub insecure_skip_verify: bool,
    #[serde(rename = "rootCAs")]
    pub root_cas: Vec<String>,
    pub certificates: Vec<CertificateFiles>,
    #[serde(rename = "peerCertURI")]
    pub peer_cert_uri: String,
    pub spiffe: Option<serde_json::Value>,
}
