//! Services for Viaduct: what a router forwards to.
//!
//! A compiled service is a [`ServiceNode`] tree: load balancers over servers at the leaves,
//! weighted, highest-random-weight, mirroring and failover services above them. Picking a
//! server takes no lock: balancer state and server health ([`health`]) live in atomics so
//! that every worker thread can pick concurrently. Health checker tasks are owned by the
//! balancers of the snapshots using them and stop with the last one. Connection pools live in
//! [`Transport`]s, which the compiler carries across configuration reloads by name and
//! configuration so that a reload never drops pooled connections. Plain-`http` HTTP/1.1
//! backends are served by an inline client (`h1`) whose I/O runs in the request's own task;
//! TLS, `h2c` and upgrades go through hyper-util.

mod body;
mod composite;
mod error;
mod h1;
pub mod health;
pub mod readiness;
mod schedule;
mod server;
mod service;
pub mod sticky;
mod strategy;
mod tls;
mod transport;

pub use body::{full_body, Body, BoxError, BoxedBody, CountedBody};
pub use composite::{
    Child, Failover, FailoverOnStatus, HighestRandomWeight, Mirror, Mirroring, StatusRangeError,
    Weighted, MAX_MIRROR_COPIES,
};
pub use error::{error_text, Blame, ProxyError};
pub use h1::{BodyDecoder, Decoded, UpstreamBody, UpstreamBodyError};
pub use health::{PassivePolicy, ServerState, ServerStatus};
pub use schedule::WeightedSchedule;
pub use server::{Server, ServerUrlError};
pub use service::{
    InternalService, LoadBalancer, LoadBalancerOptions, PickContext, ServiceNode, Target,
};
pub use strategy::{Strategy, UnknownStrategy};
pub use tls::{
    client_config_from, crypto_provider, read_certificates, read_key, skip_verification,
    trust_anchors,
};
pub use transport::{Transport, TransportError, TransportSettings, UPSTREAM_CLIENT_ENV};
