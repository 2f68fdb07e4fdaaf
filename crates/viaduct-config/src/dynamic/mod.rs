//! The dynamic (routing) configuration: what providers produce and the compiler consumes.
//!
//! These are plain serde types mirroring Traefik v3's `pkg/config/dynamic`. They carry no
//! behaviour; validation that needs more than one object (references, cycles, rules) is the
//! compiler's job so that an error stays local to the object it concerns.

mod http;
mod tcp;
mod tls;
mod udp;

use serde::{Deserialize, Serialize};

pub use http::*;
pub use tcp::*;
pub use tls::*;
pub use udp::*;

/// The four roots of a dynamic configuration document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DynamicConfig {
    pub http: Option<HttpConfig>,
    pub tcp: Option<TcpConfig>,
    pub udp: Option<UdpConfig>,
    pub tls: Option<TlsConfig>,
}

impl DynamicConfig {
    /// True when the document defines nothing at all (Traefik skips such updates).
    pub fn is_empty(&self) -> bool {
        self.http.as_ref().is_none_or(HttpConfig::is_empty)
            && self.tcp.as_ref().is_none_or(TcpConfig::is_empty)
            && self.udp.as_ref().is_none_or(UdpConfig::is_empty)
            && self.tls.as_ref().is_none_or(TlsConfig::is_empty)
    }
}
