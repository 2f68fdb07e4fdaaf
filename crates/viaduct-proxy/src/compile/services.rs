//! Services and servers transports.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use viaduct_config::{HttpConfig, Service};
use viaduct_upstream::{
    InternalService, LoadBalancer, Server, ServiceNode, Transport, TransportSettings, Weighted,
};

use super::{CompileContext, ObjectStatus, DEFAULT_TRANSPORT};
use crate::snapshot::Snapshot;

pub(super) fn build_transports(
    http: &HttpConfig,
    ctx: &CompileContext,
    previous: Option<&Snapshot>,
    status: &mut ObjectStatus,
) -> HashMap<String, Arc<Transport>> {
    let mut wanted: Vec<(String, TransportSettings)> =
        vec![(DEFAULT_TRANSPORT.to_string(), ctx.default_transport.clone())];
    for (name, config) in &http.servers_transports {
        wanted.push((name.clone(), TransportSettings::from_dynamic(config)));
    }
    let mut out = HashMap::new();
    for (name, settings) in wanted {
        let reused = previous
            .and_then(|p| p.transports.get(&name))
            .filter(|t| t.settings() == &settings)
            .cloned();
        let transport = match reused {
            Some(t) => t,
            None => match Transport::new(settings) {
                Ok(t) => Arc::new(t),
                Err(e) => {
                    status.error(format!("http.serversTransports.{name}"), e.to_string());
                    continue;
                }
            },
        };
        out.insert(name, transport);
    }
    out
}

/// Builds services on demand, memoised, refusing reference cycles.
pub(super) struct ServiceBuilder<'a> {
    pub(super) definitions: &'a BTreeMap<String, Service>,
    pub(super) transports: &'a HashMap<String, Arc<Transport>>,
    pub(super) built: HashMap<String, Result<Arc<ServiceNode>, String>>,
    pub(super) in_progress: HashSet<String>,
}

impl ServiceBuilder<'_> {
    pub(super) fn build(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        if let Some(done) = self.built.get(name) {
            return done.clone();
        }
        if !self.in_progress.insert(name.to_string()) {
            return Err(format!("service {name:?} is part of a reference cycle"));
        }
        let result = self.build_uncached(name);
        self.in_progress.remove(name);
        self.built.insert(name.to_string(), result.clone());
        result
    }

    fn build_uncached(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        if let Some(internal) = name.strip_suffix("@internal") {
            return match internal {
                "whoami" => Ok(Arc::new(ServiceNode::Internal(InternalService::Whoami))),
                "noop" => Ok(Arc::new(ServiceNode::Internal(InternalService::Noop))),
                other => Err(format!(
                    "the internal service {other:?} is not available yet"
                )),
            };
        }
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| format!("the service {name:?} does not exist"))?;
        let kinds = [
            definition.load_balancer.is_some(),
            definition.weighted.is_some(),
            definition.mirroring.is_some(),
            definition.failover.is_some(),
            definition.highest_random_weight.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => return Err("the service defines no kind (loadBalancer, weighted, …)".into()),
            1 => {}
            _ => return Err("the service defines more than one kind".into()),
        }
        if !definition.middlewares.is_empty() {
            return Err("service middlewares are not supported yet".into());
        }
        if let Some(lb) = &definition.load_balancer {
            return self.load_balancer(name, lb);
        }
        if let Some(weighted) = &definition.weighted {
            let mut children = Vec::new();
            for child in &weighted.services {
                let weight = weight_of(child.weight)
                    .map_err(|e| format!("service {:?}: {e}", child.name))?;
                let node = self.build(&child.name)?;
                children.push((node, weight));
            }
            if weighted.sticky.is_some() {
                tracing::warn!(
                    service = name,
                    "sticky sessions are not supported yet; ignored"
                );
            }
            return Ok(Arc::new(ServiceNode::Weighted(Weighted::new(
                name.to_string(),
                children,
            ))));
        }
        Err("mirroring, failover and highestRandomWeight services are not supported yet".into())
    }

    fn load_balancer(
        &mut self,
        name: &str,
        lb: &viaduct_config::LoadBalancer,
    ) -> Result<Arc<ServiceNode>, String> {
        let mut servers = Vec::with_capacity(lb.servers.len());
        for (i, server) in lb.servers.iter().enumerate() {
            let weight = weight_of(server.weight).map_err(|e| format!("servers[{i}]: {e}"))?;
            if server.url.is_empty() {
                return Err(format!("servers[{i}]: the url is empty"));
            }
            servers.push(
                Server::parse(&server.url, weight, server.preserve_path)
                    .map_err(|e| e.to_string())?,
            );
        }
        let transport_name = lb.servers_transport.as_deref().unwrap_or(DEFAULT_TRANSPORT);
        let transport = self
            .transports
            .get(transport_name)
            .cloned()
            .ok_or_else(|| format!("the servers transport {transport_name:?} does not exist"))?;
        for (feature, set) in [
            ("healthCheck", lb.health_check.is_some()),
            ("passiveHealthCheck", lb.passive_health_check.is_some()),
            ("sticky", lb.sticky.is_some()),
        ] {
            if set {
                tracing::warn!(service = name, feature, "not supported yet; ignored");
            }
        }
        if let Some(strategy) = lb
            .strategy
            .as_deref()
            .filter(|s| !s.eq_ignore_ascii_case("wrr"))
        {
            tracing::warn!(
                service = name,
                strategy,
                "strategy not supported yet; using wrr"
            );
        }
        Ok(Arc::new(ServiceNode::LoadBalancer(LoadBalancer::new(
            name.to_string(),
            servers,
            lb.pass_host_header,
            transport,
        ))))
    }
}

impl viaduct_middlewares::ServiceResolver for ServiceBuilder<'_> {
    fn service(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        self.build(name)
    }
}

fn weight_of(weight: Option<i64>) -> Result<u64, String> {
    match weight {
        None => Ok(1),
        Some(w) => u64::try_from(w).map_err(|_| format!("weight {w} is negative")),
    }
}
