//! Servers transports: how Viaduct connects to backends, and the connection pools.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use http::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use viaduct_config::static_config::StaticServersTransport;
use viaduct_config::{ForwardingTimeouts, GoDuration, ServersTransport};

use crate::body::Body;
use crate::error::{error_chain, error_text, timed_out, Blame, ProxyError};
use crate::h1::{self, HostPool};
use crate::server::Server;
use crate::tls;

/// Setting this environment variable to `hyper` sends every request through hyper-util's
/// pooled client, to compare it with the inline HTTP/1.1 client.
pub const UPSTREAM_CLIENT_ENV: &str = "VIADUCT_UPSTREAM_CLIENT";

/// A servers transport's settings, with Traefik's defaults applied. Two transports with
/// equal settings can share their pools, which is how pools survive a reload.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSettings {
    pub insecure_skip_verify: bool,
    pub root_cas: Vec<String>,
    pub server_name: Option<String>,
    /// Client certificates as (certificate, key), each a file path or inline PEM.
    pub certificates: Vec<(String, String)>,
    /// Idle connections kept per backend; `0` disables reuse.
    pub max_idle_per_host: usize,
    pub dial_timeout: Option<Duration>,
    pub response_header_timeout: Option<Duration>,
    pub idle_conn_timeout: Option<Duration>,
    pub read_idle_timeout: Option<Duration>,
    pub ping_timeout: Option<Duration>,
    pub disable_http2: bool,
    /// `peerCertURI`: the backend's certificate must carry this URI among its subject
    /// alternative names (its chain is still verified; its DNS name is not).
    pub peer_cert_uri: Option<String>,
    /// Sends plain-`http` HTTP/1.1 requests through hyper-util's pooled client rather than
    /// the inline client (which is the default). Not a Traefik option: for comparisons.
    pub use_hyper_client: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// Traefik's `maxIdleConnsPerHost`: absent → 200, `0` → Go's default of 2, negative → none.
fn idle_per_host(configured: Option<i64>) -> usize {
    match configured {
        None => 200,
        Some(0) => 2,
        Some(n) if n < 0 => 0,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

fn hyper_client_requested() -> bool {
    std::env::var(UPSTREAM_CLIENT_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("hyper"))
}

fn timeouts(t: Option<&ForwardingTimeouts>) -> [Option<GoDuration>; 5] {
    let t = t.cloned().unwrap_or_default();
    [
        Some(t.dial_timeout.unwrap_or(GoDuration::from_secs(30))),
        t.response_header_timeout,
        Some(t.idle_conn_timeout.unwrap_or(GoDuration::from_secs(90))),
        t.read_idle_timeout,
        Some(t.ping_timeout.unwrap_or(GoDuration::from_secs(15))),
    ]
}

impl TransportSettings {
    /// The static `serversTransport` section: the `default@internal` transport.
    pub fn from_static(config: &StaticServersTransport) -> Self {
        let [dial, header, idle, read_idle, ping] = timeouts(config.forwarding_timeouts.as_ref());
        TransportSettings {
            insecure_skip_verify: config.insecure_skip_verify,
            root_cas: config.root_cas.clone(),
            server_name: None,
            certificates: Vec::new(),
            max_idle_per_host: idle_per_host(Some(config.max_idle_conns_per_host)),
            dial_timeout: dial.and_then(GoDuration::positive),
            response_header_timeout: header.and_then(GoDuration::positive),
            idle_conn_timeout: idle.and_then(GoDuration::positive),
            read_idle_timeout: read_idle.and_then(GoDuration::positive),
            ping_timeout: ping.and_then(GoDuration::positive),
            disable_http2: false,
            peer_cert_uri: None,
            use_hyper_client: hyper_client_requested(),
        }
    }

    /// A dynamic `http.serversTransports.<name>`.
    pub fn from_dynamic(config: &ServersTransport) -> Self {
        let [dial, header, idle, read_idle, ping] = timeouts(config.forwarding_timeouts.as_ref());
        TransportSettings {
            insecure_skip_verify: config.insecure_skip_verify,
            root_cas: config.root_cas.clone(),
            server_name: (!config.server_name.is_empty()).then(|| config.server_name.clone()),
            certificates: config
                .certificates
                .iter()
                .map(|c| (c.cert_file.clone(), c.key_file.clone()))
                .collect(),
            max_idle_per_host: idle_per_host(config.max_idle_conns_per_host),
            dial_timeout: dial.and_then(GoDuration::positive),
            response_header_timeout: header.and_then(GoDuration::positive),
            idle_conn_timeout: idle.and_then(GoDuration::positive),
            read_idle_timeout: read_idle.and_then(GoDuration::positive),
            ping_timeout: ping.and_then(GoDuration::positive),
            disable_http2: config.disable_http2,
            peer_cert_uri: (!config.peer_cert_uri.is_empty()).then(|| config.peer_cert_uri.clone()),
            use_hyper_client: hyper_client_requested(),
        }
    }
}

/// Pooled clients for one servers transport: the inline HTTP/1.1 client for plain `http`
/// servers, hyper-util for the rest: one client for `https` servers (HTTP/2 by ALPN) and
/// protocol upgrades, one for `h2c` servers (HTTP/2 prior knowledge).
pub struct Transport {
    settings: TransportSettings,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    h2c: Client<HttpConnector, Body>,
    inline: h1::Pool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Transport {
    pub fn new(settings: TransportSettings) -> Result<Transport, TransportError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(settings.dial_timeout);
        http.set_keepalive(Some(Duration::from_secs(15)));

        let tls_config = tls::client_config(&settings)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http();
        let https = match &settings.server_name {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| TransportError::Tls(format!("serverName {name:?}: {e}")))?;
                https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => https,
        };
        let connector = if settings.disable_http2 {
            https.enable_http1().wrap_connector(http.clone())
        } else {
            https
                .enable_http1()
                .enable_http2()
                .wrap_connector(http.clone())
        };

        let client = Self::builder(&settings).build(connector);
        let h2c = Self::builder(&settings).http2_only(true).build(http);
        let inline = h1::Pool::new(h1::PoolSettings {
            max_idle_per_host: settings.max_idle_per_host,
            idle_timeout: settings.idle_conn_timeout,
            dial_timeout: settings.dial_timeout,
        });
        Ok(Transport {
            settings,
            client,
            h2c,
            inline,
        })
    }

    fn builder(settings: &TransportSettings) -> hyper_util::client::legacy::Builder {
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(settings.idle_conn_timeout)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .http2_keep_alive_interval(settings.read_idle_timeout)
            .http2_keep_alive_timeout(settings.ping_timeout.unwrap_or(Duration::from_secs(15)))
            // Hop-by-hop handling and Host are the proxy's job, not the client's.
            .set_host(false);
        builder
    }

    pub fn settings(&self) -> &TransportSettings {
        &self.settings
    }

    /// Sends `request` (absolute-form URI) and waits for the response head. Prefer
    /// [`Transport::send_to`] on the request path: it finds the connection pool without a
    /// lookup.
    pub async fn send(
        &self,
        request: Request<Body>,
        h2c: bool,
    ) -> Result<Response<Body>, ProxyError> {
        let plain_http = request.uri().scheme() == Some(&Scheme::HTTP);
        let host = match (
            request.uri().authority(),
            self.inline_close(&request, plain_http, h2c),
        ) {
            (Some(authority), Some(close)) => Some((self.inline.host(authority), close)),
            _ => None,
        };
        self.dispatch(request, h2c, host).await
    }

    /// Sends `request` (absolute-form URI, built for `server`) to `server` and waits for the
    /// response head.
    pub async fn send_to(
        &self,
        request: Request<Body>,
        server: &Server,
    ) -> Result<Response<Body>, ProxyError> {
        let host = self
            .inline_close(&request, server.scheme == Scheme::HTTP, server.h2c)
            .map(|close| (self.inline.host_for(server), close));
        // The common case, inline without a header timeout, awaits the client directly: every
        // layer of future between here and the socket is one more copy of the request.
        match host {
            Some((host, close)) if self.settings.response_header_timeout.is_none() => {
                h1::send(host, request, close).await
            }
            // Boxed: hyper's client future is several KiB, and inline it would make every
            // request's future that much larger.
            host => Box::pin(self.dispatch(request, server.h2c, host)).await,
        }
    }

    /// `Some` when the request goes to the inline client, telling whether it asked to close
    /// the connection after the exchange (both read from `Connection` in one lookup). Upgrades
    /// need hyper's connection hand-over, and TLS and HTTP/2 are hyper's too.
    fn inline_close(&self, request: &Request<Body>, plain_http: bool, h2c: bool) -> Option<bool> {
        if !plain_http
            || h2c
            || self.settings.use_hyper_client
            || request.method() == Method::CONNECT
        {
            return None;
        }
        let asks = h1::ConnectionAsks::of(request.headers());
        (!asks.upgrade).then_some(asks.close)
    }

    async fn dispatch(
        &self,
        request: Request<Body>,
        h2c: bool,
        inline_host: Option<(Arc<HostPool>, bool)>,
    ) -> Result<Response<Body>, ProxyError> {
        match inline_host {
            Some((host, close)) => {
                self.within_header_timeout(h1::send(host, request, close))
                    .await
            }
            None => {
                let future = async {
                    let response = if h2c {
                        self.h2c.request(request).await
                    } else {
                        self.client.request(request).await
                    };
                    response.map(|r| r.map(Body::Incoming)).map_err(classify)
                };
                self.within_header_timeout(future).await
            }
        }
    }

    /// `responseHeaderTimeout`: from the start of the request to the end of the response head.
    async fn within_header_timeout<T>(
        &self,
        future: impl Future<Output = Result<T, ProxyError>>,
    ) -> Result<T, ProxyError> {
        match self.settings.response_header_timeout {
            Some(limit) => tokio::time::timeout(limit, future)
                .await
                .unwrap_or_else(|_| {
                    Err(ProxyError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        Blame::Upstream,
                        false,
                        format!("no response headers within {limit:?}"),
                    ))
                }),
            None => future.await,
        }
    }
}

/// Maps a client error to Traefik's status codes: timeouts are 504, everything else 502.
/// A failure to connect is retryable (nothing reached the backend). The client's own request
/// body failing (hyper's "user" errors) is the client's: 408 when its `readTimeout` passed, 400
/// otherwise, as on the inline client.
fn classify(err: hyper_util::client::legacy::Error) -> ProxyError {
    let from_client = error_chain(&err).any(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
    });
    let (status, blame) = match (from_client, timed_out(&err)) {
        (true, true) => (StatusCode::REQUEST_TIMEOUT, Blame::Client),
        (true, false) => (StatusCode::BAD_REQUEST, Blame::Client),
        (false, true) => (StatusCode::GATEWAY_TIMEOUT, Blame::Upstream),
        (false, false) => (StatusCode::BAD_GATEWAY, Blame::Upstream),
    };
    let detail = error_text(&err);
    ProxyError::new(status, blame, err.is_connect(), detail)
}
