//! Viaduct's routing for what is not HTTP: TCP routers (by TLS server name, ALPN and client
//! IP; TLS terminated or passed through), TCP services with PROXY protocol and TLS towards
//! backends, the TCP middlewares, PROXY protocol parsing on entry points, and UDP sessions.
//!
//! The entry point (in `viaduct-proxy`) peeks at a connection, asks the entry point's
//! [`TcpEntryPointRoutes`] where it goes, and hands it to [`serve_route`]; everything here
//! is compiled once per configuration and read without locks per connection.

mod health;
mod middleware;
pub mod proxy_protocol;
mod relay;
mod router;
mod service;
mod stream;
mod transport;
mod udp;

pub use health::{HealthState, TcpHealthCheck};
pub use middleware::{admit, InFlightConn, InFlightGuard, Refusal, TcpMiddleware};
pub use proxy_protocol::{ProxyHeader, ProxyProtocolError};
pub use relay::{relay, RelayEnd};
pub use router::{
    serve_route, HttpsClaims, RouterLifetime, TcpEntryPointRoutes, TcpRoute, TcpRouterTable,
    TlsDecision, TlsMode, UdpRoute,
};
pub use service::{
    qualify, Definition, ServiceBuilder, TcpServer, TcpServiceBuilder, TcpServiceNode,
    UdpServiceBuilder, UdpServiceNode,
};
pub use stream::BackendStream;
pub use transport::{
    DialError, TcpTransport, TcpTransportDefaults, TcpTransportError, DEFAULT_DIAL_KEEP_ALIVE,
    DEFAULT_DIAL_TIMEOUT, DEFAULT_TERMINATION_DELAY,
};
pub use udp::{serve_udp, DEFAULT_UDP_TIMEOUT};
