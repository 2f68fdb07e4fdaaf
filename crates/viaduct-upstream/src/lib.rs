//! Services for Viaduct: what a router forwards to.
//!
//! A compiled service is a [`ServiceNode`] tree: load balancers over servers at the leaves,
//! weighted services above them. Picking a server takes no lock: balancer state lives in
//! atomics so that every worker thread can pick concurrently. Connection pools live in
//! [`Transport`]s, which the compiler carries across configuration reloads by name and
//! configuration so that a reload never drops pooled connections. Plain-`http` HTTP/1.1
//! backends are served by an inline client (`h1`) whose I/O runs in the request's own task;
//! TLS, `h2c` and upgrades go through hyper-util.

mod body;
mod error;
mod h1;
mod schedule;
mod server;
mod service;
mod tls;
mod transport;

pub use body::{full_body, Body, BoxError, BoxedBody};
pub use error::{Blame, ProxyError};
pub use h1::{UpstreamBody, UpstreamBodyError};
pub use schedule::WeightedSchedule;
pub use server::{Server, ServerUrlError};
pub use service::{InternalService, LoadBalancer, ServiceNode, Target, Weighted};
pub use transport::{Transport, TransportError, TransportSettings, UPSTREAM_CLIENT_ENV};
