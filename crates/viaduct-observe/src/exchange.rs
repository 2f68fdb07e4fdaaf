//! The request path's hooks: an [`EntryPointObserver`] (resolved once per entry point) begins
//! an [`Exchange`] per request; the exchange finishes when the response body has been sent
//! (or dropped), and then counts metrics and submits the access-log record.
//!
//! With neither metrics nor an access log, [`EntryPointObserver::begin`] returns `None` after
//! one branch: nothing else runs.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};
use http_body::{Frame, SizeHint};
use viaduct_upstream::{Body, BoxError};

use crate::access_log::{AccessLog, AccessRecord, UpstreamFacts};
use crate::metrics::{
    ConnectionGauge, MethodLabel, Observation, OpenConnection, ProtocolLabel, SeriesKey,
    SeriesTable, TlsLabels,
};
use crate::notes::{ClientUsername, RetryAttempts};
use crate::traces::{ExchangeFacts, Trace, Tracer};
use crate::Hub;

/// What one entry point observes. The default observes nothing.
#[derive(Debug, Clone, Default)]
pub struct EntryPointObserver {
    inner: Option<Arc<Observed>>,
    connections: Option<Arc<ConnectionGauge>>,
}

/// A compiled router's handles: its names and its router and service series.
#[derive(Debug)]
pub struct RouteObserver {
    router: Arc<str>,
    service: Arc<str>,
    router_metrics: Option<Arc<SeriesTable>>,
    service_metrics: Option<Arc<SeriesTable>>,
    /// Routers to `…@internal` services (ping, metrics, API) are left out unless the
    /// `addInternals` options ask for them, as in Traefik.
    internal: bool,
    /// The router's `observability` switches (default on).
    metrics: bool,
    access_log: bool,
    tracing: bool,
    trace_detailed: bool,
}

/// A router's `observability` switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterSwitches {
    pub metrics: bool,
    pub access_log: bool,
    pub tracing: bool,
    /// `traceVerbosity: detailed`: `Router` and `Service` spans too.
    pub trace_detailed: bool,
}

/// One request being observed.
#[derive(Debug)]
pub struct Exchange {
    observed: Arc<Observed>,
    started: Instant,
    /// Wall-clock start, for the access log only.
    start_time: Option<SystemTime>,
    method: Method,
    protocol: ProtocolLabel,
    request_bytes: u64,
    request: Option<Box<RequestFacts>>,
    header_values: Option<Box<[String]>>,
    trace: Option<Box<Trace>>,
    tls_labels: Option<TlsLabels>,
}

#[derive(Debug)]
struct Observed {
    name: Arc<str>,
    metrics: Option<Arc<SeriesTable>>,
    metrics_internals: bool,
    /// `headerLabels` headers, in label order.
    header_labels: Box<[http::HeaderName]>,
    access_log: Option<AccessLog>,
    tracer: Option<Arc<Tracer>>,
}

/// What the access log needs from the request, taken before the proxy rewrites it.
#[derive(Debug)]
struct RequestFacts {
    client: SocketAddr,
    path: String,
    version: Version,
    host: String,
    tls: bool,
    referer: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    headers: Option<HeaderMap>,
    request_count: u64,
}

/// Everything needed to account for the exchange once the body is done.
struct Pending {
    exchange: Exchange,
    status: u16,
    route: Option<Arc<RouteObserver>>,
    upstream: Option<UpstreamFacts>,
    response_headers: Option<HeaderMap>,
    retry_attempts: u32,
    client_username: Option<Arc<str>>,
    count_metrics: bool,
    log: bool,
    trace: bool,
}

/// A response body that counts its bytes and accounts for the exchange when dropped.
struct ObservedBody {
    inner: Body,
    bytes: u64,
    pending: Option<Box<Pending>>,
}

impl EntryPointObserver {
    pub fn new(entry_point: &str, hub: &Hub) -> EntryPointObserver {
        let metrics = hub.metrics.as_ref();
        let connections = metrics.map(|m| m.connections(entry_point));
        if metrics.is_none() && hub.access_log.is_none() && hub.tracer.is_none() {
            return EntryPointObserver::default();
        }
        EntryPointObserver {
            inner: Some(Arc::new(Observed {
                name: Arc::from(entry_point),
                metrics: metrics.and_then(|m| m.entry_point(entry_point)),
                metrics_internals: metrics.is_some_and(|m| m.settings().add_internals),
                header_labels: metrics
                    .map(|m| {
                        m.settings()
                            .header_labels
                            .iter()
                            .map(|(_, h)| h.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
                access_log: hub.access_log.clone(),
                tracer: hub.tracer.clone(),
            })),
            connections,
        }
    }

    /// Counts a connection in `traefik_open_connections` until the guard is dropped.
    pub fn connection_opened(&self) -> Option<OpenConnection> {
        self.connections.as_ref().map(ConnectionGauge::open)
    }

    /// Whether the forwarding code should attach [`UpstreamFacts`] to responses.
    pub fn wants_upstream(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|o| o.access_log.is_some() || o.tracer.is_some())
    }

    /// Starts observing a request, if anything is observed.
    pub fn begin<B>(
        &self,
        request: &Request<B>,
        client: SocketAddr,
        tls: bool,
        tls_labels: Option<TlsLabels>,
    ) -> Option<Exchange> {
        let observed = self.inner.as_ref()?;
        let headers = request.headers();
        let log = observed.access_log.as_ref();
        let trace = observed.tracer.as_ref().and_then(|t| t.begin(headers));
        let request_facts = (log.is_some() || trace.is_some()).then(|| {
            let host = request
                .uri()
                .authority()
                .map(|a| a.as_str().to_string())
                .or_else(|| {
                    headers
                        .get(http::header::HOST)
                        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
                })
                .unwrap_or_default();
            Box::new(RequestFacts {
                client,
                path: request
                    .uri()
                    .path_and_query()
                    .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
                version: request.version(),
                host,
                tls,
                referer: headers.get(http::header::REFERER).cloned(),
                user_agent: headers.get(http::header::USER_AGENT).cloned(),
                headers: log
                    .filter(|log| log.wants_headers())
                    .map(|_| headers.clone()),
                request_count: log.map_or(0, AccessLog::next_request_number),
            })
        });
        Some(Exchange {
            observed: observed.clone(),
            started: Instant::now(),
            start_time: request_facts.is_some().then(SystemTime::now),
            method: request.method().clone(),
            protocol: ProtocolLabel::of(headers),
            request_bytes: content_length(headers),
            request: request_facts,
            header_values: (!observed.header_labels.is_empty()).then(|| {
                observed
                    .header_labels
                    .iter()
                    .map(|h| {
                        headers
                            .get(h)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .unwrap_or_default()
                    })
                    .collect()
            }),
            trace: trace.map(Box::new),
            tls_labels,
        })
    }
}

impl Default for RouterSwitches {
    fn default() -> Self {
        RouterSwitches {
            metrics: true,
            access_log: true,
            tracing: true,
            trace_detailed: false,
        }
    }
}

impl RouteObserver {
    /// The handles of a compiled router; `None` when nothing is observed.
    pub fn new(
        hub: &Hub,
        router: &str,
        service: &str,
        switches: RouterSwitches,
    ) -> Option<RouteObserver> {
        if hub.metrics.is_none() && hub.access_log.is_none() && hub.tracer.is_none() {
            return None;
        }
        let metrics = hub.metrics.as_ref().filter(|_| switches.metrics);
        Some(RouteObserver {
            router: Arc::from(router),
            service: Arc::from(service),
            router_metrics: metrics.and_then(|m| m.router(router, service)),
            service_metrics: metrics.and_then(|m| m.service(service)),
            internal: service.ends_with("@internal"),
            metrics: switches.metrics,
            access_log: switches.access_log,
            tracing: switches.tracing,
            trace_detailed: switches.trace_detailed,
        })
    }
}

impl Exchange {
    /// The `traceparent` to send to the backend, when this request is traced.
    pub fn traceparent(&self) -> Option<HeaderValue> {
        self.trace.as_ref().and_then(|t| t.traceparent())
    }

    /// Wraps the response so that the exchange is accounted for when its body is done.
    /// `route` is `None` for requests no router took (404s).
    pub fn finish(
        self,
        mut response: Response<Body>,
        route: Option<&Arc<RouteObserver>>,
    ) -> Response<Body> {
        let internal = route.is_some_and(|r| r.internal);
        let log = self
            .observed
            .access_log
            .as_ref()
            .filter(|l| !internal || l.settings().add_internals)
            .filter(|_| route.is_none_or(|r| r.access_log));
        let count_metrics =
            (!internal || self.observed.metrics_internals) && route.is_none_or(|r| r.metrics);
        let trace = self.trace.is_some()
            && self
                .observed
                .tracer
                .as_ref()
                .is_some_and(|t| !internal || t.settings().add_internals)
            && route.is_none_or(|r| r.tracing);
        if log.is_none() && !count_metrics && !trace {
            return response;
        }
        let wants_headers = log.is_some_and(AccessLog::wants_headers);
        let log = log.is_some();
        let extensions = response.extensions_mut();
        let upstream = extensions.remove::<UpstreamFacts>();
        let retry_attempts = extensions.get::<RetryAttempts>().map_or(0, |r| r.0);
        let client_username = extensions.remove::<ClientUsername>().map(|u| u.0);
        let pending = Box::new(Pending {
            status: response.status().as_u16(),
            route: route.cloned(),
            upstream,
            response_headers: wants_headers.then(|| response.headers().clone()),
            retry_attempts,
            client_username,
            count_metrics,
            log,
            trace,
            exchange: self,
        });
        response.map(|inner| {
            Body::boxed(ObservedBody {
                inner,
                bytes: 0,
                pending: Some(pending),
            })
        })
    }
}

impl Pending {
    fn complete(self, response_bytes: u64) {
        let exchange = self.exchange;
        let duration = exchange.started.elapsed();
        if self.count_metrics {
            let observation = Observation {
                key: SeriesKey {
                    method: MethodLabel::of(&exchange.method),
                    code: self.status,
                    protocol: exchange.protocol,
                },
                duration,
                request_bytes: exchange.request_bytes,
                response_bytes,
            };
            let tables = [
                exchange.observed.metrics.as_ref(),
                self.route.as_ref().and_then(|r| r.router_metrics.as_ref()),
                self.route.as_ref().and_then(|r| r.service_metrics.as_ref()),
            ];
            for table in tables.into_iter().flatten() {
                table.record(&observation);
                if let Some(values) = &exchange.header_values {
                    table.count_with_headers(observation.key, values);
                }
                if let Some(labels) = exchange.tls_labels {
                    table.count_tls(labels);
                }
            }
            if let Some(service) = self.route.as_ref().and_then(|r| r.service_metrics.as_ref()) {
                service.count_retries(self.retry_attempts);
            }
        }
        if self.trace {
            if let (Some(tracer), Some(trace), Some(request)) = (
                exchange.observed.tracer.as_ref(),
                exchange.trace.as_deref(),
                exchange.request.as_deref(),
            ) {
                tracer.submit(
                    trace.spans(&ExchangeFacts {
                        entry_point: &exchange.observed.name,
                        method: exchange.method.as_str(),
                        path: &request.path,
                        host: &request.host,
                        tls: request.tls,
                        version: request.version,
                        user_agent: request.user_agent.as_ref(),
                        client: request.client,
                        request_bytes: exchange.request_bytes,
                        status: self.status,
                        duration,
                        route: self.route.as_ref().map(|r| (&*r.router, &*r.service)),
                        detailed: self.route.as_ref().is_some_and(|r| r.trace_detailed),
                        safe_query_params: &tracer.settings().safe_query_params,
                        upstream: self
                            .upstream
                            .as_ref()
                            .map(|u| (u, u.sent_at.saturating_duration_since(exchange.started))),
                    }),
                );
            }
        }
        let (Some(log), Some(request), true) = (
            exchange.observed.access_log.as_ref(),
            exchange.request,
            self.log,
        ) else {
            return;
        };
        let (router, service) = match &self.route {
            Some(r) => (Some(r.router.clone()), Some(r.service.clone())),
            None => (None, None),
        };
        log.submit(AccessRecord {
            start: exchange.start_time.unwrap_or_else(SystemTime::now),
            duration,
            client: request.client,
            method: exchange.method,
            path: request.path,
            version: request.version,
            host: request.host,
            tls: request.tls,
            request_content_size: exchange.request_bytes,
            entry_point: exchange.observed.name.clone(),
            router,
            service,
            upstream: self.upstream,
            status: self.status,
            downstream_size: response_bytes,
            request_count: request.request_count,
            retry_attempts: self.retry_attempts,
            client_username: self.client_username,
            referer: request.referer,
            user_agent: request.user_agent,
            request_headers: request.headers,
            response_headers: self.response_headers,
        });
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.complete(self.bytes);
        }
    }
}

/// The request body's declared size (a chunked body counts as 0).
fn content_length(headers: &HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
