//! The static (install) configuration: entry points, providers, logs, transports.
//!
//! Mirrors Traefik v3's `pkg/config/static`. Every top-level section parses, so real
//! `traefik.yml` files load; sections whose feature Viaduct does not build yet are reported by
//! [`StaticConfig::unsupported_keys`].

mod entrypoint;
mod observability;
mod providers;
mod sections;
mod unsupported;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use entrypoint::*;
pub use observability::*;
pub use providers::*;
pub use sections::*;

/// Name and address of the entry point Traefik creates when none is declared.
pub const IMPLICIT_ENTRY_POINT: (&str, &str) = ("http", ":80");
/// Name and address of the entry point internal services (API, ping, metrics) default to.
pub const INTERNAL_ENTRY_POINT: (&str, &str) = ("traefik", ":8080");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StaticConfig {
    pub entry_points: BTreeMap<String, EntryPoint>,
    pub providers: Providers,
    pub log: Log,
    pub servers_transport: StaticServersTransport,
    pub global: Global,
    pub core: Core,
    pub tcp_servers_transport: Option<StaticTcpServersTransport>,
    pub api: Option<Api>,
    pub metrics: Option<Metrics>,
    pub ping: Option<Ping>,
    pub access_log: Option<AccessLog>,
    pub tracing: Option<Tracing>,
    pub host_resolver: Option<HostResolver>,
    pub certificates_resolvers: BTreeMap<String, CertificatesResolver>,
    pub experimental: Option<Experimental>,
    pub spiffe: Option<Spiffe>,
    pub ocsp: Option<Ocsp>,
}

impl StaticConfig {
    /// Applies Traefik's implicit entry points:
    ///
    /// 1. no entry point declared → `http` on `:80`;
    /// 2. an entry point `traefik` on `:8080` is added, if not declared, when `api.insecure`
    ///    is set, when `ping` or `metrics.prometheus` use the entry point `traefik` without
    ///    `manualRouting`, or when `providers.rest.insecure` is set.
    pub fn with_implicit_defaults(mut self) -> Self {
        if self.entry_points.is_empty() {
            let (name, address) = IMPLICIT_ENTRY_POINT;
            self.entry_points
                .insert(name.into(), entry_point_at(address));
        }
        let (internal, internal_address) = INTERNAL_ENTRY_POINT;
        if self.needs_internal_entry_point() && !self.entry_points.contains_key(internal) {
            self.entry_points
                .insert(internal.into(), entry_point_at(internal_address));
        }
        self
    }

    fn needs_internal_entry_point(&self) -> bool {
        let (internal, _) = INTERNAL_ENTRY_POINT;
        let api = self.api.as_ref().is_some_and(|api| api.insecure);
        let ping = self
            .ping
            .as_ref()
            .is_some_and(|p| p.entry_point == internal && !p.manual_routing);
        let prometheus = self
            .metrics
            .as_ref()
            .and_then(|m| m.prometheus.as_ref())
            .is_some_and(|p| p.entry_point == internal && !p.manual_routing);
        let rest = self.providers.rest.as_ref().is_some_and(|r| r.insecure);
        api || ping || prometheus || rest
    }
}

fn entry_point_at(address: &str) -> EntryPoint {
    EntryPoint {
        address: address.into(),
        ..EntryPoint::default()
    }
}
