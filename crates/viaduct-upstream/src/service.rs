//! Compiled services: the tree a router forwards into.

use std::sync::Arc;

use crate::schedule::WeightedSchedule;
use crate::server::Server;
use crate::transport::Transport;

/// A compiled service. Built once per snapshot; shared by every request through it.
#[derive(Debug)]
pub enum ServiceNode {
    LoadBalancer(LoadBalancer),
    Weighted(Weighted),
    Internal(InternalService),
}

/// Services Viaduct answers itself (`<name>@internal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalService {
    /// The embedded demo: answers with a page describing the request.
    Whoami,
    /// Answers nothing useful; the target of routers that only redirect.
    Noop,
}

/// Where one request goes, decided by walking the tree.
#[derive(Debug)]
pub enum Target<'a> {
    Server {
        balancer: &'a LoadBalancer,
        server: &'a Server,
    },
    Internal(InternalService),
    /// No server can take the request: 503.
    Unavailable,
}

#[derive(Debug)]
pub struct LoadBalancer {
    pub name: String,
    pub servers: Vec<Server>,
    schedule: Option<WeightedSchedule>,
    pub pass_host_header: bool,
    pub transport: Arc<Transport>,
}

#[derive(Debug)]
pub struct Weighted {
    pub name: String,
    pub children: Vec<Arc<ServiceNode>>,
    schedule: Option<WeightedSchedule>,
}

impl ServiceNode {
    /// Picks where the next request goes. Lock-free: each level is one atomic increment.
    pub fn target(&self) -> Target<'_> {
        let mut node = self;
        // Depth is bounded by the compiler, which rejects reference cycles.
        loop {
            match node {
                ServiceNode::LoadBalancer(lb) => {
                    return match lb.pick() {
                        Some(server) => Target::Server {
                            balancer: lb,
                            server,
                        },
                        None => Target::Unavailable,
                    }
                }
                ServiceNode::Weighted(w) => match &w.schedule {
                    Some(s) => node = &w.children[s.pick()],
                    None => return Target::Unavailable,
                },
                ServiceNode::Internal(internal) => return Target::Internal(*internal),
            }
        }
    }

    /// Carries balancer positions over from the previous snapshot's node of the same name.
    pub fn resume_from(&self, previous: &ServiceNode) {
        match (self, previous) {
            (ServiceNode::LoadBalancer(a), ServiceNode::LoadBalancer(b)) => {
                if let (Some(s), Some(p)) = (&a.schedule, &b.schedule) {
                    s.resume_from(p);
                }
            }
            (ServiceNode::Weighted(a), ServiceNode::Weighted(b)) => {
                if let (Some(s), Some(p)) = (&a.schedule, &b.schedule) {
                    s.resume_from(p);
                }
            }
            _ => {}
        }
    }
}

impl LoadBalancer {
    pub fn new(
        name: String,
        servers: Vec<Server>,
        pass_host_header: bool,
        transport: Arc<Transport>,
    ) -> Self {
        let weights: Vec<u64> = servers.iter().map(|s| s.weight).collect();
        let schedule = WeightedSchedule::new(&weights);
        LoadBalancer {
            name,
            servers,
            schedule,
            pass_host_header,
            transport,
        }
    }

    pub fn pick(&self) -> Option<&Server> {
        self.schedule.as_ref().map(|s| &self.servers[s.pick()])
    }
}

impl Weighted {
    /// `children` with their weights; children of weight 0 are never picked.
    pub fn new(name: String, children: Vec<(Arc<ServiceNode>, u64)>) -> Self {
        let weights: Vec<u64> = children.iter().map(|(_, w)| *w).collect();
        let schedule = WeightedSchedule::new(&weights);
        Weighted {
            name,
            children: children.into_iter().map(|(c, _)| c).collect(),
            schedule,
        }
    }
}
