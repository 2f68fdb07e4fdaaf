//! Merging the configurations of all providers into one, with every name qualified.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use viaduct_config::{
    DynamicConfig, HttpConfig, Middleware, Router, Service, TcpConfig, TcpRouter, TcpService,
    TlsConfig, UdpConfig, UdpRouter, UdpService, WeightedService,
};

/// The TLS option and store every provider may define without a qualifier.
const DEFAULT_TLS_NAME: &str = "default";

/// Merges the latest configuration of each provider (keyed by provider name).
///
/// Every object is renamed `name@provider`, and every reference without an `@` is qualified
/// with the referencing object's provider, so that `service: whoami` in the file provider
/// means `whoami@file`. Names that already contain `@` are invalid and skipped.
///
/// TLS follows Traefik: certificates are concatenated; options and stores are qualified like
/// other objects except `default`, which stays unqualified. `default` defined by two providers
/// is ambiguous: it is dropped with an error, so the built-in default applies.
pub fn merge<C: Borrow<DynamicConfig>>(configs: &BTreeMap<String, C>) -> DynamicConfig {
    let mut merged = DynamicConfig::default();
    let mut default_options_by = Vec::new();
    let mut default_store_by = Vec::new();
    for (provider, config) in configs {
        let config: &DynamicConfig = config.borrow();
        let q = Qualifier { provider };
        if let Some(http) = &config.http {
            let into = merged.http.get_or_insert_with(HttpConfig::default);
            q.insert("http.routers", &mut into.routers, &http.routers, |r| {
                q.http_router(r)
            });
            q.insert("http.services", &mut into.services, &http.services, |s| {
                q.http_service(s)
            });
            q.insert(
                "http.middlewares",
                &mut into.middlewares,
                &http.middlewares,
                |m| q.http_middleware(m),
            );
            q.insert(
                "http.serversTransports",
                &mut into.servers_transports,
                &http.servers_transports,
                |_| {},
            );
            q.insert("http.models", &mut into.models, &http.models, |_| {});
        }
        if let Some(tcp) = &config.tcp {
            let into = merged.tcp.get_or_insert_with(TcpConfig::default);
            q.insert("tcp.routers", &mut into.routers, &tcp.routers, |r| {
                q.tcp_router(r)
            });
            q.insert("tcp.services", &mut into.services, &tcp.services, |s| {
                q.tcp_service(s)
            });
            q.insert(
                "tcp.middlewares",
                &mut into.middlewares,
                &tcp.middlewares,
                |_| {},
            );
            q.insert(
                "tcp.serversTransports",
                &mut into.servers_transports,
                &tcp.servers_transports,
                |_| {},
            );
        }
        if let Some(udp) = &config.udp {
            let into = merged.udp.get_or_insert_with(UdpConfig::default);
            q.insert("udp.routers", &mut into.routers, &udp.routers, |r| {
                q.udp_router(r)
            });
            q.insert("udp.services", &mut into.services, &udp.services, |s| {
                q.udp_service(s)
            });
        }
        if let Some(tls) = &config.tls {
            let into = merged.tls.get_or_insert_with(TlsConfig::default);
            into.certificates.extend(tls.certificates.iter().cloned());
            if tls.options.contains_key(DEFAULT_TLS_NAME) {
                default_options_by.push(provider.as_str());
            }
            if tls.stores.contains_key(DEFAULT_TLS_NAME) {
                default_store_by.push(provider.as_str());
            }
            q.insert_tls("tls.options", &mut into.options, &tls.options);
            q.insert_tls("tls.stores", &mut into.stores, &tls.stores);
        }
    }
    if let Some(tls) = &mut merged.tls {
        if default_options_by.len() > 1 {
            tracing::error!(
                providers = ?default_options_by,
                object = "tls.options.default",
                "the default TLS options are defined by several providers; using the built-in default"
            );
            tls.options.remove(DEFAULT_TLS_NAME);
        }
        if default_store_by.len() > 1 {
            tracing::error!(
                providers = ?default_store_by,
                object = "tls.stores.default",
                "the default TLS store is defined by several providers; ignoring all of them"
            );
            tls.stores.remove(DEFAULT_TLS_NAME);
        }
    }
    merged
}

/// Qualifies the names of one provider's objects and of their references.
struct Qualifier<'a> {
    provider: &'a str,
}

impl Qualifier<'_> {
    /// Copies `from` into `into` under qualified names, fixing each object's references.
    fn insert<T: Clone>(
        &self,
        section: &str,
        into: &mut BTreeMap<String, T>,
        from: &BTreeMap<String, T>,
        qualify_references: impl Fn(&mut T),
    ) {
        for (name, object) in from {
            if !self.is_valid_name(section, name) {
                continue;
            }
            let mut object = object.clone();
            qualify_references(&mut object);
            into.insert(self.name(name), object);
        }
    }

    /// Like [`Self::insert`], but `default` keeps its name: it is shared by all providers.
    fn insert_tls<T: Clone>(
        &self,
        section: &str,
        into: &mut BTreeMap<String, T>,
        from: &BTreeMap<String, T>,
    ) {
        for (name, object) in from {
            if !self.is_valid_name(section, name) {
                continue;
            }
            let key = if name == DEFAULT_TLS_NAME {
                name.clone()
            } else {
                self.name(name)
            };
            into.insert(key, object.clone());
        }
    }

    fn is_valid_name(&self, section: &str, name: &str) -> bool {
        if name.contains('@') {
            tracing::error!(
                provider = self.provider,
                object = %format!("{section}.{name}"),
                "object names cannot contain `@`; the object is ignored"
            );
            return false;
        }
        true
    }

    fn name(&self, name: &str) -> String {
        format!("{name}@{}", self.provider)
    }

    fn reference(&self, reference: &mut String) {
        // An empty reference stays empty so the compiler can report it as missing.
        if !reference.is_empty() && !reference.contains('@') {
            reference.push('@');
            reference.push_str(self.provider);
        }
    }

    fn references(&self, references: &mut [String]) {
        references.iter_mut().for_each(|r| self.reference(r));
    }

    fn tls_options(&self, options: &mut String) {
        if options != DEFAULT_TLS_NAME {
            self.reference(options);
        }
    }

    fn weighted(&self, services: &mut [WeightedService]) {
        services
            .iter_mut()
            .for_each(|s| self.reference(&mut s.name));
    }

    fn http_router(&self, router: &mut Router) {
        self.reference(&mut router.service);
        self.references(&mut router.middlewares);
        self.references(&mut router.parent_refs);
        if let Some(tls) = &mut router.tls {
            self.tls_options(&mut tls.options);
        }
    }

    fn http_service(&self, service: &mut Service) {
        self.references(&mut service.middlewares);
        if let Some(lb) = &mut service.load_balancer {
            if let Some(transport) = &mut lb.servers_transport {
                self.reference(transport);
            }
        }
        if let Some(weighted) = &mut service.weighted {
            self.weighted(&mut weighted.services);
        }
        if let Some(hrw) = &mut service.highest_random_weight {
            self.weighted(&mut hrw.services);
        }
        if let Some(mirroring) = &mut service.mirroring {
            self.reference(&mut mirroring.service);
            mirroring
                .mirrors
                .iter_mut()
                .for_each(|m| self.reference(&mut m.name));
        }
        if let Some(failover) = &mut service.failover {
            self.reference(&mut failover.service);
            self.reference(&mut failover.fallback);
        }
    }

    /// Middleware options are still JSON trees; only `chain` and `errors` name other objects.
    fn http_middleware(&self, middleware: &mut Middleware) {
        if let Some(chain) = &mut middleware.chain {
            if let Some(serde_json::Value::Array(names)) = field_mut(chain, "middlewares") {
                for name in names {
                    self.json_reference(name);
                }
            }
        }
        if let Some(errors) = &mut middleware.errors {
            if let Some(service) = field_mut(errors, "service") {
                self.json_reference(service);
            }
        }
    }

    fn json_reference(&self, value: &mut serde_json::Value) {
        if let serde_json::Value::String(reference) = value {
            self.reference(reference);
        }
    }

    fn tcp_router(&self, router: &mut TcpRouter) {
        self.reference(&mut router.service);
        self.references(&mut router.middlewares);
        if let Some(tls) = &mut router.tls {
            self.tls_options(&mut tls.options);
        }
    }

    fn tcp_service(&self, service: &mut TcpService) {
        if let Some(lb) = &mut service.load_balancer {
            if let Some(transport) = &mut lb.servers_transport {
                self.reference(transport);
            }
        }
        if let Some(weighted) = &mut service.weighted {
            self.weighted(&mut weighted.services);
        }
    }

    fn udp_router(&self, router: &mut UdpRouter) {
        self.reference(&mut router.service);
    }

    fn udp_service(&self, service: &mut UdpService) {
        if let Some(weighted) = &mut service.weighted {
            self.weighted(&mut weighted.services);
        }
    }
}

/// A field of a JSON object, found case-insensitively as Traefik reads keys.
fn field_mut<'v>(value: &'v mut serde_json::Value, key: &str) -> Option<&'v mut serde_json::Value> {
    value
        .as_object_mut()?
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}
