//! The middleware trait and the chain a router runs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use viaduct_upstream::{Body, ServiceNode};

pub type Request = http::Request<Body>;
pub type Response = http::Response<Body>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One middleware, fully prepared when the snapshot was built.
///
/// `handle` either answers itself (a redirect, a 401, a 429…) or passes the (possibly
/// modified) request on with `next.run(request)`, and may then change the response. It may
/// call `next` more than once (`retry`) or not at all.
pub trait Middleware: Send + Sync + std::fmt::Debug {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response>;
}

/// Sends a request to a service: implemented by the proxy, which owns the forwarding path
/// (forwarded headers, upstream URI, transports). Middlewares that call a service of their
/// own (`errors`) go through it too.
pub trait Forwarder: Send + Sync {
    fn forward<'a>(&'a self, request: Request, service: &'a ServiceNode)
        -> BoxFuture<'a, Response>;
}

/// What a middleware may know about the request beyond the request itself.
pub struct RequestContext<'a> {
    /// The TCP peer (the client, or the last proxy before us).
    pub peer: SocketAddr,
    /// True when the request came over TLS.
    pub tls: bool,
    /// The client's certificate chain, leaf first, when it presented one (mTLS).
    pub client_certificates: Option<&'a [CertificateDer<'static>]>,
    /// The entry point's name.
    pub entry_point: &'a str,
    /// The qualified name of the router that matched.
    pub router: &'a str,
    pub forwarder: &'a dyn Forwarder,
}

/// The rest of the chain: the middlewares after the current one, then the service.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    rest: &'a [Arc<dyn Middleware>],
    service: &'a ServiceNode,
    ctx: &'a RequestContext<'a>,
}

impl<'a> Next<'a> {
    /// Runs the rest of the chain on `request`.
    pub fn run(self, request: Request) -> BoxFuture<'a, Response> {
        match self.rest.split_first() {
            Some((first, rest)) => first.handle(
                request,
                self.ctx,
                Next {
                    rest,
                    service: self.service,
                    ctx: self.ctx,
                },
            ),
            None => self.ctx.forwarder.forward(request, self.service),
        }
    }
}

/// A router's middlewares in execution order, `chain`s flattened. Built once per snapshot and
/// shared by every request through the router.
#[derive(Debug, Clone)]
pub struct Chain {
    middlewares: Arc<[Arc<dyn Middleware>]>,
}

impl Chain {
    pub fn new(middlewares: Vec<Arc<dyn Middleware>>) -> Self {
        Chain {
            middlewares: middlewares.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.middlewares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.middlewares.is_empty()
    }

    /// Runs `request` through the middlewares, then into `service`.
    pub fn run<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        service: &'a ServiceNode,
    ) -> BoxFuture<'a, Response> {
        Next {
            rest: &self.middlewares,
            service,
            ctx,
        }
        .run(request)
    }
}
