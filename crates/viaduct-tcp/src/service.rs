//! TCP and UDP services: weighted round robin over servers (`loadBalancer`) or over other
//! services (`weighted`), built from the dynamic configuration, memoised and cycle-checked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use viaduct_config::{TcpService, UdpService, WeightedService};
use viaduct_upstream::WeightedSchedule;

use crate::health::{HealthState, TcpHealthCheck};
use crate::transport::TcpTransport;

/// A compiled TCP service.
pub enum TcpServiceNode {
    LoadBalancer {
        servers: Vec<TcpServer>,
        schedule: WeightedSchedule,
        transport: Arc<TcpTransport>,
        /// Set with `healthCheck`: servers that are down are skipped.
        health: Option<Arc<HealthState>>,
    },
    Weighted {
        children: Vec<Arc<TcpServiceNode>>,
        schedule: WeightedSchedule,
        /// `healthCheck: {}`: children without a server up are skipped.
        skip_down: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpServer {
    /// `host:port`.
    pub address: String,
    /// Whether Viaduct speaks TLS to this server.
    pub tls: bool,
}

/// A compiled UDP service.
pub enum UdpServiceNode {
    LoadBalancer {
        servers: Vec<String>,
        schedule: WeightedSchedule,
    },
    Weighted {
        children: Vec<Arc<UdpServiceNode>>,
        schedule: WeightedSchedule,
    },
}

impl TcpServiceNode {
    /// The next server that is up and the transport to dial it with; `None` when every
    /// server is down.
    pub fn pick(&self) -> Option<(&TcpServer, &Arc<TcpTransport>)> {
        match self {
            TcpServiceNode::LoadBalancer {
                servers,
                schedule,
                transport,
                health,
            } => (0..schedule.len())
                .map(|_| schedule.pick())
                .find(|index| health.as_ref().is_none_or(|h| h.is_up(*index)))
                .map(|index| (&servers[index], transport)),
            TcpServiceNode::Weighted {
                children,
                schedule,
                skip_down,
            } => {
                for _ in 0..schedule.len() {
                    let child = &children[schedule.pick()];
                    if *skip_down && !child.is_available() {
                        continue;
                    }
                    return child.pick();
                }
                None
            }
        }
    }

    /// Whether some server of this service is up (as far as health checks know).
    fn is_available(&self) -> bool {
        match self {
            TcpServiceNode::LoadBalancer { health, .. } => {
                health.as_ref().is_none_or(|h| h.any_up())
            }
            TcpServiceNode::Weighted { children, .. } => {
                children.iter().any(|child| child.is_available())
            }
        }
    }
}

impl UdpServiceNode {
    /// The next server's `host:port`.
    pub fn pick(&self) -> &str {
        match self {
            UdpServiceNode::LoadBalancer { servers, schedule } => &servers[schedule.pick()],
            UdpServiceNode::Weighted { children, schedule } => children[schedule.pick()].pick(),
        }
    }
}

impl std::fmt::Debug for TcpServiceNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TcpServiceNode::LoadBalancer { servers, .. } => f
                .debug_struct("LoadBalancer")
                .field("servers", servers)
                .finish(),
            TcpServiceNode::Weighted { children, .. } => f
                .debug_struct("Weighted")
                .field("children", children)
                .finish(),
        }
    }
}

/// Builds services on demand by qualified name; a service is built once per compile.
pub struct ServiceBuilder<'a, S, N> {
    definitions: &'a BTreeMap<String, S>,
    transports: &'a HashMap<String, Arc<TcpTransport>>,
    default_transport: &'a Arc<TcpTransport>,
    built: HashMap<String, Result<Arc<N>, String>>,
    in_progress: HashSet<String>,
}

pub type TcpServiceBuilder<'a> = ServiceBuilder<'a, TcpService, TcpServiceNode>;
pub type UdpServiceBuilder<'a> = ServiceBuilder<'a, UdpService, UdpServiceNode>;

impl<'a, S, N> ServiceBuilder<'a, S, N>
where
    S: Definition<N>,
{
    /// `transports` are the compiled `tcp.serversTransports` by qualified name;
    /// `default_transport` serves load balancers that name none.
    pub fn new(
        definitions: &'a BTreeMap<String, S>,
        transports: &'a HashMap<String, Arc<TcpTransport>>,
        default_transport: &'a Arc<TcpTransport>,
    ) -> Self {
        ServiceBuilder {
            definitions,
            transports,
            default_transport,
            built: HashMap::new(),
            in_progress: HashSet::new(),
        }
    }

    pub fn build(&mut self, name: &str) -> Result<Arc<N>, String> {
        if let Some(done) = self.built.get(name) {
            return done.clone();
        }
        if !self.in_progress.insert(name.to_string()) {
            return Err(format!("service {name:?} is part of a reference cycle"));
        }
        let result = match self.definitions.get(name) {
            Some(definition) => definition.build(name, self).map(Arc::new),
            None => Err(format!("the service {name:?} does not exist")),
        };
        self.in_progress.remove(name);
        self.built.insert(name.to_string(), result.clone());
        result
    }

    fn weighted(
        &mut self,
        parent: &str,
        services: &[WeightedService],
    ) -> Result<(Vec<Arc<N>>, WeightedSchedule), String> {
        let mut children = Vec::with_capacity(services.len());
        let mut weights = Vec::with_capacity(services.len());
        for child in services {
            let name = qualify(parent, &child.name);
            let node = self
                .build(&name)
                .map_err(|e| format!("weighted service {name:?}: {e}"))?;
            children.push(node);
            weights.push(weight(child.weight));
        }
        let schedule = WeightedSchedule::new(&weights)
            .ok_or("the weighted service has no child with a positive weight")?;
        Ok((children, schedule))
    }
}

/// What a service definition compiles to.
pub trait Definition<N>: Sized {
    fn build(&self, name: &str, builder: &mut ServiceBuilder<'_, Self, N>) -> Result<N, String>;
}

impl Definition<TcpServiceNode> for TcpService {
    fn build(
        &self,
        name: &str,
        builder: &mut TcpServiceBuilder<'_>,
    ) -> Result<TcpServiceNode, String> {
        match (&self.load_balancer, &self.weighted) {
            (Some(lb), None) => {
                if lb.servers.is_empty() {
                    return Err("the load balancer has no servers".into());
                }
                let mut servers = Vec::with_capacity(lb.servers.len());
                let mut weights = Vec::with_capacity(lb.servers.len());
                for server in &lb.servers {
                    check_address(&server.address)?;
                    servers.push(TcpServer {
                        address: server.address.clone(),
                        tls: server.tls,
                    });
                    weights.push(weight(server.weight));
                }
                let schedule = WeightedSchedule::new(&weights)
                    .ok_or("the load balancer has no server with a positive weight")?;
                let transport = match lb.servers_transport.as_deref().filter(|t| !t.is_empty()) {
                    Some(t) => {
                        let qualified = qualify(name, t);
                        builder.transports.get(&qualified).cloned().ok_or_else(|| {
                            format!("the servers transport {qualified:?} does not exist")
                        })?
                    }
                    None => builder.default_transport.clone(),
                };
                let transport = if lb.proxy_protocol.is_some() || lb.termination_delay.is_some() {
                    let overridden = transport
                        .with_load_balancer_overrides(
                            lb.proxy_protocol.as_ref(),
                            lb.termination_delay,
                        )
                        .map_err(|e| e.to_string())?;
                    Arc::new(overridden)
                } else {
                    transport
                };
                let health = match &lb.health_check {
                    Some(options) => {
                        let check = TcpHealthCheck::from_config(options)?;
                        Some(HealthState::start(
                            check,
                            servers.clone(),
                            transport.clone(),
                        ))
                    }
                    None => None,
                };
                Ok(TcpServiceNode::LoadBalancer {
                    servers,
                    schedule,
                    transport,
                    health,
                })
            }
            (None, Some(weighted)) => {
                let (children, schedule) = builder.weighted(name, &weighted.services)?;
                Ok(TcpServiceNode::Weighted {
                    children,
                    schedule,
                    skip_down: weighted.health_check.is_some(),
                })
            }
            (None, None) => Err("the service defines no kind (loadBalancer or weighted)".into()),
            (Some(_), Some(_)) => Err("the service defines more than one kind".into()),
        }
    }
}

impl Definition<UdpServiceNode> for UdpService {
    fn build(
        &self,
        name: &str,
        builder: &mut UdpServiceBuilder<'_>,
    ) -> Result<UdpServiceNode, String> {
        match (&self.load_balancer, &self.weighted) {
            (Some(lb), None) => {
                if lb.servers.is_empty() {
                    return Err("the load balancer has no servers".into());
                }
                let servers = lb
                    .servers
                    .iter()
                    .map(|s| check_address(&s.address).map(|()| s.address.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                let schedule = WeightedSchedule::new(&vec![1; servers.len()])
                    .ok_or("the load balancer has no servers")?;
                Ok(UdpServiceNode::LoadBalancer { servers, schedule })
            }
            (None, Some(weighted)) => {
                let (children, schedule) = builder.weighted(name, &weighted.services)?;
                Ok(UdpServiceNode::Weighted { children, schedule })
            }
            (None, None) => Err("the service defines no kind (loadBalancer or weighted)".into()),
            (Some(_), Some(_)) => Err("the service defines more than one kind".into()),
        }
    }
}

/// A reference without `@provider` names an object of the referrer's provider.
pub fn qualify(referrer: &str, reference: &str) -> String {
    if reference.contains('@') {
        return reference.to_string();
    }
    match referrer.rsplit_once('@') {
        Some((_, provider)) => format!("{reference}@{provider}"),
        None => reference.to_string(),
    }
}

/// Weights default to 1; negative ones count as 0 (never picked).
fn weight(value: Option<i64>) -> u64 {
    value.map_or(1, |w| u64::try_from(w).unwrap_or(0))
}

fn check_address(address: &str) -> Result<(), String> {
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!("server address {address:?} is not host:port"))
    }
}
