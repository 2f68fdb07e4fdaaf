//! Merging the containers' configurations into the provider's one.
//!
//! Objects of the same name from several containers are merged when their definitions agree:
//! load balancers that differ only by their servers become one with every server (scaled
//! replicas); anything else must be identical. A name defined differently is dropped
//! everywhere, with an error naming the containers, as Traefik does.

use std::collections::{BTreeMap, BTreeSet};

use viaduct_config::{
    DynamicConfig, HttpConfig, LoadBalancer, Service, TcpConfig, TlsConfig, UdpConfig,
};

use crate::stream::{StreamConfig, StreamServer, StreamService};
use crate::BuildError;

/// Accumulates containers' configurations in the order given.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    config: DynamicConfig,
    /// `kind name` → containers that define it.
    defined_by: BTreeMap<(&'static str, String), Vec<String>>,
    conflicts: BTreeSet<(&'static str, String)>,
}

impl Merged {
    pub fn add(&mut self, container: &str, config: DynamicConfig) {
        let Merged {
            config: merged,
            defined_by,
            conflicts,
        } = self;
        let mut add = Adder {
            container,
            defined_by,
            conflicts,
        };
        if let Some(http) = config.http {
            let into = merged.http.get_or_insert_with(HttpConfig::default);
            add.map("router", &mut into.routers, http.routers, equal);
            add.map("service", &mut into.services, http.services, merge_service);
            add.map("middleware", &mut into.middlewares, http.middlewares, equal);
            add.map(
                "serversTransport",
                &mut into.servers_transports,
                http.servers_transports,
                equal,
            );
        }
        if let Some(mut tcp) = config.tcp {
            let into = merged.tcp.get_or_insert_with(TcpConfig::default);
            add.stream(into, &mut tcp);
            add.map(
                "TCP middleware",
                &mut into.middlewares,
                tcp.middlewares,
                equal,
            );
        }
        if let Some(mut udp) = config.udp {
            add.stream(merged.udp.get_or_insert_with(UdpConfig::default), &mut udp);
        }
        if let Some(tls) = config.tls {
            let into = merged.tls.get_or_insert_with(TlsConfig::default);
            add.map("TLS options", &mut into.options, tls.options, equal);
            add.map("TLS store", &mut into.stores, tls.stores, equal);
            for certificate in tls.certificates {
                if !into.certificates.contains(&certificate) {
                    into.certificates.push(certificate);
                }
            }
        }
    }

    /// The merged configuration without the conflicting names, and one error per conflict.
    pub fn finish(mut self) -> (DynamicConfig, Vec<BuildError>) {
        let mut errors = Vec::new();
        for (kind, name) in &self.conflicts {
            remove(&mut self.config, kind, name);
            errors.push(BuildError::Conflict {
                kind,
                name: name.clone(),
                containers: self
                    .defined_by
                    .get(&(*kind, name.clone()))
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        (self.config, errors)
    }
}

struct Adder<'a> {
    container: &'a str,
    defined_by: &'a mut BTreeMap<(&'static str, String), Vec<String>>,
    conflicts: &'a mut BTreeSet<(&'static str, String)>,
}

impl Adder<'_> {
    /// Adds a TCP or UDP configuration's routers and services (taken out of `from`).
    fn stream<C: StreamConfig>(&mut self, into: &mut C, from: &mut C) {
        let (into, from) = (into.parts(), from.parts());
        let routers = std::mem::take(from.routers);
        let services = std::mem::take(from.services);
        self.map(C::ROUTER_KIND, into.routers, routers, equal);
        self.map(
            C::SERVICE_KIND,
            into.services,
            services,
            merge_stream_service,
        );
    }

    fn map<T>(
        &mut self,
        kind: &'static str,
        into: &mut BTreeMap<String, T>,
        from: BTreeMap<String, T>,
        combine: fn(&mut T, T) -> bool,
    ) {
        for (name, item) in from {
            self.defined_by
                .entry((kind, name.clone()))
                .or_default()
                .push(self.container.to_owned());
            match into.get_mut(&name) {
                None => {
                    into.insert(name, item);
                }
                Some(existing) => {
                    if !combine(existing, item) {
                        self.conflicts.insert((kind, name));
                    }
                }
            }
        }
    }
}

fn equal<T: PartialEq>(existing: &mut T, incoming: T) -> bool {
    *existing == incoming
}

fn merge_service(existing: &mut Service, incoming: Service) -> bool {
    let (Some(into), Some(from)) = (
        existing.load_balancer.as_mut(),
        incoming.load_balancer.as_ref(),
    ) else {
        return *existing == incoming;
    };
    let same_but_servers = LoadBalancer {
        servers: Vec::new(),
        ..into.clone()
    } == LoadBalancer {
        servers: Vec::new(),
        ..from.clone()
    };
    let same_rest = Service {
        load_balancer: None,
        ..existing.clone()
    } == Service {
        load_balancer: None,
        ..incoming.clone()
    };
    if !(same_but_servers && same_rest) {
        return false;
    }
    let Some(into) = existing.load_balancer.as_mut() else {
        return false;
    };
    for server in from.servers.iter() {
        if !into.servers.iter().any(|s| s.url == server.url) {
            into.servers.push(server.clone());
        }
    }
    true
}

/// Load balancers that differ only by their servers become one with every server.
fn merge_stream_service<S: StreamService>(existing: &mut S, mut incoming: S) -> bool {
    let from = incoming.servers_mut().map(std::mem::take);
    let Some(into) = existing.servers_mut() else {
        return from.is_none() && *existing == incoming;
    };
    let (Some(from), kept) = (from, std::mem::take(into)) else {
        return false;
    };
    let same_but_servers = *existing == incoming;
    let Some(into) = existing.servers_mut() else {
        return false;
    };
    *into = kept;
    if !same_but_servers {
        return false;
    }
    for server in from {
        if !into.iter().any(|s| s.address() == server.address()) {
            into.push(server);
        }
    }
    true
}

fn remove(config: &mut DynamicConfig, kind: &str, name: &str) {
    if let Some(http) = config.http.as_mut() {
        match kind {
            "router" => drop(http.routers.remove(name)),
            "service" => drop(http.services.remove(name)),
            "middleware" => drop(http.middlewares.remove(name)),
            "serversTransport" => drop(http.servers_transports.remove(name)),
            _ => {}
        }
    }
    if let Some(tcp) = config.tcp.as_mut() {
        match kind {
            "TCP router" => drop(tcp.routers.remove(name)),
            "TCP service" => drop(tcp.services.remove(name)),
            "TCP middleware" => drop(tcp.middlewares.remove(name)),
            _ => {}
        }
    }
    if let Some(udp) = config.udp.as_mut() {
        match kind {
            "UDP router" => drop(udp.routers.remove(name)),
            "UDP service" => drop(udp.services.remove(name)),
            _ => {}
        }
    }
    if let Some(tls) = config.tls.as_mut() {
        match kind {
            "TLS options" => drop(tls.options.remove(name)),
            "TLS store" => drop(tls.stores.remove(name)),
            _ => {}
        }
    }
}
