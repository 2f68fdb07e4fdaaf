//! Compiled services: the tree a router forwards into.

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use crate::composite::{Failover, HighestRandomWeight, Mirroring, Weighted};
use crate::health::{HealthCheckSpec, HealthChecker, PassivePolicy, ServerState, ServerStatus};
use crate::schedule::WeightedSchedule;
use crate::server::Server;
use crate::sticky::Sticky;
use crate::strategy::{self, Members, Strategy};
use crate::transport::Transport;

/// A compiled service. Built once per snapshot; shared by every request through it.
#[derive(Debug)]
pub enum ServiceNode {
    LoadBalancer(LoadBalancer),
    Weighted(Weighted),
    HighestRandomWeight(HighestRandomWeight),
    Mirroring(Mirroring),
    Failover(Failover),
    Internal(InternalService),
}

/// Services Viaduct answers itself (`<name>@internal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalService {
    /// The embedded demo: answers with a page describing the request.
    Whoami,
    /// Answers nothing useful; the target of routers that only redirect.
    Noop,
    /// The REST API (`api@internal`), with the dashboard under `dashboard/`.
    Api,
    /// The dashboard's files (`dashboard@internal`), behind a strip-prefix middleware.
    Dashboard,
    /// `ping@internal`: `/ping` for health checks of Viaduct itself.
    Ping,
    /// `prometheus@internal`: the metrics in Prometheus' text format.
    Prometheus,
}

/// What a pick may look at in the request.
#[derive(Debug, Clone, Copy)]
pub struct PickContext<'a> {
    /// For sticky cookies.
    pub headers: &'a HeaderMap,
    /// For `hrw`.
    pub client_ip: Option<IpAddr>,
}

/// Where one request goes, decided by walking the tree.
#[derive(Debug)]
pub enum Target<'a> {
    Server {
        balancer: &'a LoadBalancer,
        server: &'a Server,
    },
    Internal(InternalService),
    /// A mirroring service: the caller sends the request to its main service and copies to
    /// its mirrors.
    Mirror(&'a Mirroring),
    /// A failover on response statuses whose main service is up: the caller sends the
    /// request to the main service and replays it on the fallback if the answer is listed.
    Failover(&'a Failover),
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
    options: LoadBalancerOptions,
}

/// The optional parts of a load balancer.
#[derive(Debug, Default)]
pub struct LoadBalancerOptions {
    pub strategy: Strategy,
    pub sticky: Option<Sticky>,
    pub passive: Option<PassivePolicy>,
    /// The active health check, when configured.
    pub health_check: Option<Arc<HealthCheckSpec>>,
    /// The running checkers (one per server), owned here so that they stop with the last
    /// snapshot using them.
    pub checkers: Vec<Arc<HealthChecker>>,
}

impl ServiceNode {
    /// Picks where the next request goes; `Set-Cookie` values that stick the client to the
    /// pick are pushed onto `set_cookies`. Lock-free: atomics at each level.
    pub fn target<'a>(
        &'a self,
        ctx: &PickContext<'_>,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Target<'a> {
        let mut node = self;
        // Depth is bounded by the compiler, which rejects reference cycles.
        loop {
            node = match node {
                ServiceNode::LoadBalancer(lb) => {
                    return match lb.pick(ctx, set_cookies) {
                        Some(server) => Target::Server {
                            balancer: lb,
                            server,
                        },
                        None => Target::Unavailable,
                    }
                }
                ServiceNode::Weighted(w) => match w.pick(ctx, set_cookies) {
                    Some(child) => child,
                    None => return Target::Unavailable,
                },
                ServiceNode::HighestRandomWeight(h) => match h.pick(ctx) {
                    Some(child) => child,
                    None => return Target::Unavailable,
                },
                ServiceNode::Failover(f) if f.replays() => return Target::Failover(f),
                ServiceNode::Failover(f) => f.pick(),
                ServiceNode::Mirroring(m) => return Target::Mirror(m),
                ServiceNode::Internal(internal) => return Target::Internal(*internal),
            }
        }
    }

    /// Whether the service can take a request: a parent with `healthCheck` skips children
    /// for which this is false, and a failover switches to its fallback.
    pub fn is_available(&self) -> bool {
        match self {
            ServiceNode::LoadBalancer(lb) => lb
                .servers
                .iter()
                .any(|s| s.weight > 0 && s.state.is_available()),
            ServiceNode::Weighted(w) => w.is_available(),
            ServiceNode::HighestRandomWeight(h) => h.is_available(),
            ServiceNode::Mirroring(m) => m.main.is_available(),
            ServiceNode::Failover(f) => f.is_available(),
            ServiceNode::Internal(_) => true,
        }
    }

    /// Whether the service tells its parents when it goes down (Traefik's status updaters):
    /// a load balancer with `healthCheck`, a parent with `healthCheck: {}`.
    pub fn reports_health(&self) -> bool {
        match self {
            ServiceNode::LoadBalancer(lb) => lb.options.health_check.is_some(),
            ServiceNode::Weighted(w) => w.health_check,
            ServiceNode::HighestRandomWeight(h) => h.health_check,
            ServiceNode::Mirroring(m) => m.health_check,
            ServiceNode::Failover(f) => f.health_check,
            ServiceNode::Internal(_) => false,
        }
    }

    /// Each server of a load balancer with its status; empty for other kinds.
    pub fn server_statuses(&self) -> Vec<(&str, ServerStatus)> {
        match self {
            ServiceNode::LoadBalancer(lb) => lb
                .servers
                .iter()
                .map(|s| (s.url.as_str(), s.state.status()))
                .collect(),
            _ => Vec::new(),
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
            (ServiceNode::Weighted(a), ServiceNode::Weighted(b)) => a.resume_from(b),
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
        Self::with_options(
            name,
            servers,
            pass_host_header,
            transport,
            LoadBalancerOptions::default(),
        )
    }

    pub fn with_options(
        name: String,
        servers: Vec<Server>,
        pass_host_header: bool,
        transport: Arc<Transport>,
        options: LoadBalancerOptions,
    ) -> Self {
        let weights: Vec<u64> = servers.iter().map(|s| s.weight).collect();
        let schedule = WeightedSchedule::new(&weights);
        LoadBalancer {
            name,
            servers,
            schedule,
            pass_host_header,
            transport,
            options,
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.options.strategy
    }

    pub fn passive(&self) -> Option<&PassivePolicy> {
        self.options.passive.as_ref()
    }

    pub fn health_check(&self) -> Option<&Arc<HealthCheckSpec>> {
        self.options.health_check.as_ref()
    }

    /// The running health checkers, one per server.
    pub fn checkers(&self) -> &[Arc<HealthChecker>] {
        &self.options.checkers
    }

    /// The running checker of the server with this URL, for the next snapshot to keep.
    pub fn checker_for(
        &self,
        server: &Server,
        spec: &HealthCheckSpec,
    ) -> Option<&Arc<HealthChecker>> {
        self.options
            .checkers
            .iter()
            .find(|c| c.is_equivalent(server, spec, &self.transport))
    }

    /// The state of the server with this URL, for the next snapshot to keep.
    pub fn state_of(&self, url: &str) -> Option<&Arc<ServerState>> {
        self.servers.iter().find(|s| s.url == url).map(|s| &s.state)
    }

    /// Requests through this balancer must be counted in flight (`p2c`, `leasttime`).
    pub fn counts_in_flight(&self) -> bool {
        matches!(self.options.strategy, Strategy::P2c | Strategy::LeastTime)
    }

    /// Response times must be recorded (`leasttime`).
    pub fn times_responses(&self) -> bool {
        self.options.strategy == Strategy::LeastTime
    }

    /// Whether a request refused at connection (nothing reached the server) may be sent to
    /// another server: when the user asked for health checking and there is another server.
    pub fn retries_refused_connections(&self) -> bool {
        self.servers.len() > 1
            && (self.options.health_check.is_some() || self.options.passive.is_some())
    }

    /// The `Set-Cookie` value sticking a client to `server`, when the balancer is sticky.
    pub fn sticky_cookie_for(&self, server: &Server) -> Option<&HeaderValue> {
        let index = self.servers.iter().position(|s| std::ptr::eq(s, server))?;
        self.options.sticky.as_ref()?.set_cookie(index)
    }

    /// An available server other than `except`, in the schedule's order when possible.
    pub fn pick_excluding(&self, except: &Server) -> Option<&Server> {
        let members = ServerMembers(&self.servers);
        (0..self.servers.len())
            .filter_map(|_| strategy::wrr(self.schedule.as_ref(), &members))
            .map(|i| &self.servers[i])
            .find(|s| !std::ptr::eq(*s, except))
            .or_else(|| {
                self.servers
                    .iter()
                    .find(|s| !std::ptr::eq(*s, except) && s.weight > 0 && s.state.is_available())
            })
    }

    pub fn pick(
        &self,
        ctx: &PickContext<'_>,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Option<&Server> {
        let sticky = self.options.sticky.as_ref();
        if let Some(choice) = sticky.and_then(|s| s.choice(ctx.headers)) {
            if let Some(server) = self
                .servers
                .get(choice.member)
                .filter(|s| s.state.is_available())
            {
                if choice.rewrite {
                    set_cookies.extend(sticky.and_then(|s| s.set_cookie(choice.member)).cloned());
                }
                return Some(server);
            }
        }
        let members = ServerMembers(&self.servers);
        let picked = match self.options.strategy {
            Strategy::Wrr => strategy::wrr(self.schedule.as_ref(), &members),
            Strategy::P2c => strategy::p2c(&members),
            Strategy::Hrw => strategy::hrw(ctx.client_ip, &members),
            Strategy::LeastTime => strategy::least_time(self.schedule.as_ref(), &members),
        }?;
        if let Some(sticky) = sticky {
            set_cookies.extend(sticky.set_cookie(picked).cloned());
        }
        self.servers.get(picked)
    }
}

struct ServerMembers<'a>(&'a [Server]);

impl Members for ServerMembers<'_> {
    fn count(&self) -> usize {
        self.0.len()
    }
    fn weight(&self, i: usize) -> u64 {
        self.0[i].weight
    }
    fn available(&self, i: usize) -> bool {
        self.0[i].state.is_available()
    }
    fn load(&self, i: usize) -> usize {
        self.0[i].state.in_flight()
    }
    fn key(&self, i: usize) -> &str {
        &self.0[i].url
    }
    fn response_ms(&self, i: usize) -> f64 {
        self.0[i].state.mean_response_ms()
    }
}
