use serde::{Deserialize, Serialize};

use crate::GoDuration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EntryPoint {
    /// `[host]:port[/tcp|/udp]`.
    pub address: String,
    pub as_default: bool,
    pub reuse_port: bool,
    #[serde(rename = "allowACMEByPass")]
    pub allow_acme_by_pass: bool,
    pub forwarded_headers: ForwardedHeaders,
    pub transport: EntryPointTransport,
    pub proxy_protocol: Option<serde_json::Value>,
    pub http: EntryPointHttp,
    pub http2: Option<serde_json::Value>,
    pub http3: Option<serde_json::Value>,
    pub udp: Option<serde_json::Value>,
    pub observability: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ForwardedHeaders {
    pub insecure: bool,
    #[serde(rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
    pub connection: Vec<String>,
    pub not_append_x_forwarded_for: bool,
    pub add_x_forwarded_scheme_headers: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EntryPointTransport {
    pub responding_timeouts: RespondingTimeouts,
    pub life_cycle: LifeCycle,
    pub keep_alive_max_requests: i64,
    pub keep_alive_max_time: GoDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RespondingTimeouts {
    pub read_timeout: GoDuration,
    pub write_timeout: GoDuration,
    pub idle_timeout: GoDuration,
}

impl Default for RespondingTimeouts {
    fn default() -> Self {
        RespondingTimeouts {
            read_timeout: GoDuration::from_secs(60),
            write_timeout: GoDuration::ZERO,
            idle_timeout: GoDuration::from_secs(180),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LifeCycle {
    pub request_accept_grace_timeout: GoDuration,
    pub grace_time_out: GoDuration,
}

impl Default for LifeCycle {
    fn default() -> Self {
        LifeCycle {
            request_accept_grace_timeout: GoDuration::ZERO,
            grace_time_out: GoDuration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EntryPointHttp {
    pub redirections: Option<Redirections>,
    pub middlewares: Vec<String>,
    /// TLS for every HTTP router of the entry point that sets none itself.
    pub tls: Option<crate::RouterTls>,
    pub encoded_characters: Option<serde_json::Value>,
    pub encode_query_semicolons: bool,
    pub sanitize_path: bool,
    pub max_header_bytes: i64,
    pub underscore_headers_strategy: Option<String>,
}

impl Default for EntryPointHttp {
    fn default() -> Self {
        EntryPointHttp {
            redirections: None,
            middlewares: Vec::new(),
            tls: None,
            encoded_characters: None,
            encode_query_semicolons: false,
            sanitize_path: true,
            max_header_bytes: 1 << 20,
            underscore_headers_strategy: None,
        }
    }
}

/// `entryPoints.<name>.http.redirections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Redirections {
    pub entry_point: Option<RedirectEntryPoint>,
}

/// Redirect every request of the entry point to another entry point (usually HTTP → HTTPS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RedirectEntryPoint {
    /// An entry point name, or `:port`.
    pub to: String,
    pub scheme: String,
    pub permanent: bool,
    /// The generated router's priority (Traefik: `MaxInt - 1`).
    pub priority: i64,
}

impl Default for RedirectEntryPoint {
    fn default() -> Self {
        RedirectEntryPoint {
            to: String::new(),
            scheme: "https".into(),
            permanent: true,
            priority: i64::MAX - 1,
        }
    }
}
