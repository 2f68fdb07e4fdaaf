//! What TCP and UDP configurations have in common for this provider: routers naming a
//! service, and load balancers over servers given by address (or, from labels, by port).
//! One trait over each lets the automatic set-up and the merge treat both the same way.

use std::collections::BTreeMap;

use viaduct_config::{
    TcpConfig, TcpLoadBalancer, TcpRouter, TcpServer, TcpService, UdpConfig, UdpLoadBalancer,
    UdpRouter, UdpServer, UdpService,
};

/// A TCP or UDP configuration: its routers and services.
pub(crate) trait StreamConfig {
    type Router: StreamRouter + PartialEq;
    type Service: StreamService;
    /// `TCP` or `UDP`, as error messages name the protocol.
    const PROTOCOL: &'static str;
    /// The kinds under which the merge records definitions (see `merge::remove`).
    const ROUTER_KIND: &'static str;
    const SERVICE_KIND: &'static str;

    fn parts(&mut self) -> Parts<'_, Self::Router, Self::Service>;
}

/// A configuration's routers and services, borrowed together.
pub(crate) struct Parts<'a, R, S> {
    pub routers: &'a mut BTreeMap<String, R>,
    pub services: &'a mut BTreeMap<String, S>,
}

pub(crate) trait StreamRouter {
    fn service_mut(&mut self) -> &mut String;
}

pub(crate) trait StreamService: Default + PartialEq {
    type Server: StreamServer;
    /// A service with an empty load balancer, as created for a container.
    fn with_load_balancer() -> Self;
    /// The load balancer's servers; `None` for a service without a load balancer.
    fn servers_mut(&mut self) -> Option<&mut Vec<Self::Server>>;
}

pub(crate) trait StreamServer: Default {
    fn address(&self) -> &str;
    fn address_mut(&mut self) -> &mut String;
    /// The port a label gave instead of an address.
    fn port_mut(&mut self) -> &mut Option<String>;
}

// The TCP and UDP types have the same fields for all the traits need.
macro_rules! impl_stream {
    ($protocol:literal, $config:ty, $router:ty, $service:ty, $balancer:ty, $server:ty) => {
        impl StreamConfig for $config {
            type Router = $router;
            type Service = $service;
            const PROTOCOL: &'static str = $protocol;
            const ROUTER_KIND: &'static str = concat!($protocol, " router");
            const SERVICE_KIND: &'static str = concat!($protocol, " service");

            fn parts(&mut self) -> Parts<'_, $router, $service> {
                Parts {
                    routers: &mut self.routers,
                    services: &mut self.services,
                }
            }
        }

        impl StreamRouter for $router {
            fn service_mut(&mut self) -> &mut String {
                &mut self.service
            }
        }

        impl StreamService for $service {
            type Server = $server;

            fn with_load_balancer() -> Self {
                Self {
                    load_balancer: Some(<$balancer>::default()),
                    ..Default::default()
                }
            }

            fn servers_mut(&mut self) -> Option<&mut Vec<$server>> {
                self.load_balancer
                    .as_mut()
                    .map(|balancer| &mut balancer.servers)
            }
        }

        impl StreamServer for $server {
            fn address(&self) -> &str {
                &self.address
            }

            fn address_mut(&mut self) -> &mut String {
                &mut self.address
            }

            fn port_mut(&mut self) -> &mut Option<String> {
                &mut self.port
            }
        }
    };
}

impl_stream!(
    "TCP",
    TcpConfig,
    TcpRouter,
    TcpService,
    TcpLoadBalancer,
    TcpServer
);
impl_stream!(
    "UDP",
    UdpConfig,
    UdpRouter,
    UdpService,
    UdpLoadBalancer,
    UdpServer
);
