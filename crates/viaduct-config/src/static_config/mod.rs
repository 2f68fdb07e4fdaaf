//! The static (install) configuration: entry points, providers, logs, transports.
//!
//! Mirrors Traefik v3's `pkg/config/static`. Sections whose feature Viaduct does not build yet
//! are still parsed (so real files load) and reported by [`StaticConfig::unsupported_sections`].

mod entrypoint;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use entrypoint::*;

use crate::{ForwardingTimeouts, GoDuration};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StaticConfig {
    pub entry_points: BTreeMap<String, EntryPoint>,
    pub providers: Providers,
    pub log: Log,
    pub servers_transport: StaticServersTransport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Providers {
    pub providers_throttle_duration: GoDuration,
    pub file: Option<FileProvider>,
}

impl Default for Providers {
    fn default() -> Self {
        Providers {
            providers_throttle_duration: GoDuration::from_secs(2),
            file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FileProvider {
    pub filename: Option<String>,
    pub directory: Option<String>,
    pub watch: bool,
    pub debug_log_generated_template: bool,
}

impl Default for FileProvider {
    fn default() -> Self {
        FileProvider {
            filename: None,
            directory: None,
            watch: true,
            debug_log_generated_template: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Log {
    pub level: String,
    pub format: String,
    pub file_path: Option<String>,
    pub no_color: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "ERROR".into(),
            format: "common".into(),
            file_path: None,
            no_color: false,
        }
    }
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
