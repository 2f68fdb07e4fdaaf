//! The smaller top-level sections: `global`, `core`, `serversTransport`,
//! `tcpServersTransport`, `hostResolver`, `certificatesResolvers`, `experimental`, `spiffe`,
//! `ocsp`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ForwardingTimeouts, GoDuration};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Global {
    /// Absent means Traefik's default (true); Viaduct never checks for new versions.
    pub check_new_version: Option<bool>,
    /// Viaduct never sends usage data.
    pub send_anonymous_usage: Option<bool>,
    pub not_append_x_forwarded_for: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Core {
    /// `v3` (default) or the deprecated `v2`.
    pub default_rule_syntax: String,
}

/// The default HTTP transport to backends (`default@internal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StaticServersTransport {
    pub insecure_skip_verify: bool,
    #[serde(rename = "rootCAs")]
    pub root_cas: Vec<String>,
    pub max_idle_conns_per_host: i64,
    pub forwarding_timeouts: Option<ForwardingTimeouts>,
    pub spiffe: Option<serde_json::Value>,
}

/// The default TCP transport to backends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StaticTcpServersTransport {
    pub dial_keep_alive: GoDuration,
    pub dial_timeout: GoDuration,
    pub termination_delay: GoDuration,
    pub tls: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HostResolver {
    pub cname_flattening: bool,
    pub resolv_config: String,
    pub resolv_depth: u32,
}

/// One `certificatesResolvers.<name>`: ACME or Tailscale (options kept untyped for now).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CertificatesResolver {
    pub acme: Option<serde_json::Value>,
    pub tailscale: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Experimental {
    pub plugins: BTreeMap<String, serde_json::Value>,
    pub local_plugins: BTreeMap<String, serde_json::Value>,
    pub abort_on_plugin_failure: bool,
    pub fast_proxy: Option<serde_json::Value>,
    pub otlp_logs: bool,
    pub knative: bool,
    #[serde(rename = "kubernetesIngressNGINX")]
    pub kubernetes_ingress_nginx: bool,
    pub kubernetes_gateway: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Spiffe {
    #[serde(rename = "workloadAPIAddr")]
    pub workload_api_addr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Ocsp {
    pub responder_overrides: BTreeMap<String, String>,
}

impl Default for Core {
    fn default() -> Self {
        Core {
            default_rule_syntax: "v3".into(),
        }
    }
}

impl Default for StaticServersTransport {
    fn default() -> Self {
        StaticServersTransport {
            insecure_skip_verify: false,
            root_cas: Vec::new(),
            max_idle_conns_per_host: 200,
            forwarding_timeouts: None,
            spiffe: None,
        }
    }
}

impl Default for StaticTcpServersTransport {
    fn default() -> Self {
        StaticTcpServersTransport {
            dial_keep_alive: GoDuration::from_secs(15),
            dial_timeout: GoDuration::from_secs(30),
            termination_delay: GoDuration::ZERO,
            tls: None,
        }
    }
}

impl Default for HostResolver {
    fn default() -> Self {
        HostResolver {
            cname_flattening: false,
            resolv_config: "/etc/resolv.conf".into(),
            resolv_depth: 5,
        }
    }
}
