//! TCP servers transports: how Viaduct dials a backend (timeout, keep-alive, PROXY header,
//! TLS) and how long it waits for the other side once one side has closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use viaduct_config::{GoDuration, ProxyProtocolVersion, TcpServersTransport};
use viaduct_upstream::{
    crypto_provider, read_certificates, read_key, skip_verification, trust_anchors, TransportError,
};

use crate::proxy_protocol;
use crate::stream::BackendStream;

/// Traefik's defaults for `tcp.serversTransports`.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_DIAL_KEEP_ALIVE: Duration = Duration::from_secs(15);
pub const DEFAULT_TERMINATION_DELAY: Duration = Duration::from_millis(100);

/// A compiled `tcp.serversTransports.<name>`.
pub struct TcpTransport {
    pub dial_timeout: Duration,
    /// `None`: keep-alive probes off (a negative `dialKeepAlive`).
    pub dial_keep_alive: Option<Duration>,
    /// How long the other direction may still run once one side closed; `None`: no bound
    /// (a negative `terminationDelay`).
    pub termination_delay: Option<Duration>,
    /// PROXY protocol version sent to the backend first, if any.
    pub proxy_protocol: Option<u8>,
    tls: Option<BackendTls>,
}

#[derive(Clone)]
struct BackendTls {
    config: Arc<ClientConfig>,
    /// `serverName`; else the backend address's host.
    server_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TcpTransportError {
    #[error("proxyProtocol.version {0} is not 1 or 2")]
    ProxyProtocolVersion(i64),
    #[error("tls: {0}")]
    Tls(String),
    #[error("tls.spiffe is not supported")]
    Spiffe,
}

/// The TLS pieces are the HTTP backends' (`viaduct_upstream`); their errors read the same here.
impl From<TransportError> for TcpTransportError {
    fn from(error: TransportError) -> Self {
        match error {
            TransportError::Tls(message) => TcpTransportError::Tls(message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("dialing {address}: timed out after {timeout:?}")]
    Timeout { address: String, timeout: Duration },
    #[error("dialing {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {address}: {source}")]
    Tls {
        address: String,
        source: std::io::Error,
    },
    #[error("server name {0:?} is not valid for TLS")]
    ServerName(String),
    #[error("no TLS settings for a server with tls: true")]
    NoTls,
}

impl TcpTransport {
    /// Builds a transport from its dynamic definition, on top of the static
    /// `tcpServersTransport` defaults (`base`).
    pub fn from_config(
        config: &TcpServersTransport,
        base: &TcpTransportDefaults,
    ) -> Result<TcpTransport, TcpTransportError> {
        let proxy_protocol = proxy_protocol_version(config.proxy_protocol.as_ref())?;
        if config.tls.as_ref().is_some_and(|t| t.spiffe.is_some()) {
            return Err(TcpTransportError::Spiffe);
        }
        let tls = match &config.tls {
            Some(t) => Some(BackendTls {
                config: Arc::new(client_config(
                    t.insecure_skip_verify,
                    &t.root_cas,
                    t.certificates
                        .first()
                        .map(|c| (&*c.cert_file, &*c.key_file)),
                )?),
                server_name: Some(t.server_name.clone()).filter(|s| !s.is_empty()),
            }),
            None => base.tls.clone().map(|config| BackendTls {
                config,
                server_name: None,
            }),
        };
        Ok(TcpTransport {
            dial_timeout: duration_or(config.dial_timeout, Some(base.dial_timeout))
                .unwrap_or(DEFAULT_DIAL_TIMEOUT),
            dial_keep_alive: duration_or(config.dial_keep_alive, base.dial_keep_alive),
            termination_delay: duration_or(config.termination_delay, base.termination_delay),
            proxy_protocol,
            tls,
        })
    }

    /// This transport with a load balancer's deprecated `proxyProtocol` and `terminationDelay`
    /// (milliseconds) applied over it, as Traefik still honours them.
    pub fn with_load_balancer_overrides(
        &self,
        proxy_protocol: Option<&ProxyProtocolVersion>,
        termination_delay_ms: Option<i64>,
    ) -> Result<TcpTransport, TcpTransportError> {
        let termination_delay = match termination_delay_ms {
            None => self.termination_delay,
            Some(ms) => u64::try_from(ms).ok().map(Duration::from_millis),
        };
        Ok(TcpTransport {
            dial_timeout: self.dial_timeout,
            dial_keep_alive: self.dial_keep_alive,
            termination_delay,
            proxy_protocol: match proxy_protocol {
                Some(_) => proxy_protocol_version(proxy_protocol)?,
                None => self.proxy_protocol,
            },
            tls: self.tls.clone(),
        })
    }

    /// A transport with the static defaults only.
    pub fn from_defaults(base: &TcpTransportDefaults) -> TcpTransport {
        TcpTransport {
            dial_timeout: base.dial_timeout,
            dial_keep_alive: base.dial_keep_alive,
            termination_delay: base.termination_delay,
            proxy_protocol: None,
            tls: base.tls.clone().map(|config| BackendTls {
                config,
                server_name: None,
            }),
        }
    }

    /// Connects to `address`, sends the PROXY header describing `client` → `local` when
    /// configured, and wraps the connection in TLS when the server says `tls: true`.
    pub async fn dial(
        &self,
        address: &str,
        tls: bool,
        client: SocketAddr,
        local: SocketAddr,
    ) -> Result<BackendStream, DialError> {
        let header = self.proxy_protocol.map(|version| match version {
            1 => proxy_protocol::encode_v1(client, local),
            _ => proxy_protocol::encode_v2(client, local),
        });
        self.connect(address, tls, header.as_deref()).await
    }

    /// Connects as [`TcpTransport::dial`] does but without a PROXY header: Viaduct's own
    /// connection (health checks).
    pub async fn dial_own(&self, address: &str, tls: bool) -> Result<BackendStream, DialError> {
        self.connect(address, tls, None).await
    }

    async fn connect(
        &self,
        address: &str,
        tls: bool,
        proxy_header: Option<&[u8]>,
    ) -> Result<BackendStream, DialError> {
        let connect = TcpStream::connect(address);
        let mut stream = match tokio::time::timeout(self.dial_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(DialError::Connect {
                    address: address.to_string(),
                    source,
                })
            }
            Err(_) => {
                return Err(DialError::Timeout {
                    address: address.to_string(),
                    timeout: self.dial_timeout,
                })
            }
        };
        let _ = stream.set_nodelay(true);
        if let Some(interval) = self.dial_keep_alive {
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(interval)
                .with_interval(interval);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        }
        let io_error = |source| DialError::Connect {
            address: address.to_string(),
            source,
        };
        if let Some(header) = proxy_header {
            stream.write_all(header).await.map_err(io_error)?;
        }
        if !tls {
            return Ok(BackendStream::Plain(stream));
        }
        let settings = self.tls.as_ref().ok_or(DialError::NoTls)?;
        let name = settings
            .server_name
            .clone()
            .unwrap_or_else(|| host_of(address).to_string());
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| DialError::ServerName(name))?;
        let connector = tokio_rustls::TlsConnector::from(settings.config.clone());
        let tls = connector
            .connect(server_name, stream)
            .await
            .map_err(|source| DialError::Tls {
                address: address.to_string(),
                source,
            })?;
        Ok(BackendStream::Tls(Box::new(tls)))
    }
}

/// The static `tcpServersTransport` section, resolved.
#[derive(Clone)]
pub struct TcpTransportDefaults {
    pub dial_timeout: Duration,
    pub dial_keep_alive: Option<Duration>,
    pub termination_delay: Option<Duration>,
    /// TLS for `tls: true` servers whose transport has no `tls` section.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Default for TcpTransportDefaults {
    fn default() -> Self {
        TcpTransportDefaults {
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            dial_keep_alive: Some(DEFAULT_DIAL_KEEP_ALIVE),
            termination_delay: Some(DEFAULT_TERMINATION_DELAY),
            tls: client_config(false, &[], None).ok().map(Arc::new),
        }
    }
}

impl TcpTransportDefaults {
    pub fn from_static(config: &viaduct_config::static_config::StaticTcpServersTransport) -> Self {
        let defaults = TcpTransportDefaults::default();
        TcpTransportDefaults {
            dial_timeout: config
                .dial_timeout
                .positive()
                .unwrap_or(DEFAULT_DIAL_TIMEOUT),
            dial_keep_alive: duration_or(Some(config.dial_keep_alive), defaults.dial_keep_alive),
            termination_delay: duration_or(
                Some(config.termination_delay),
                defaults.termination_delay,
            ),
            tls: defaults.tls,
        }
    }
}

/// `proxyProtocol.version`: 2 when the section is there without one, as in Traefik.
fn proxy_protocol_version(
    section: Option<&ProxyProtocolVersion>,
) -> Result<Option<u8>, TcpTransportError> {
    match section.map(|p| p.version.unwrap_or(2)) {
        None => Ok(None),
        Some(1) => Ok(Some(1)),
        Some(2) => Ok(Some(2)),
        Some(other) => Err(TcpTransportError::ProxyProtocolVersion(other)),
    }
}

/// Traefik's reading of a transport duration: unset → the default; negative → off; zero →
/// the default for timeouts (Go's zero value means "unset").
fn duration_or(value: Option<GoDuration>, default: Option<Duration>) -> Option<Duration> {
    match value {
        None => default,
        Some(d) if d.is_negative() => None,
        Some(d) => d.positive().or(default),
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn client_config(
    insecure_skip_verify: bool,
    root_cas: &[String],
    client_certificate: Option<(&str, &str)>,
) -> Result<ClientConfig, TcpTransportError> {
    let tls_error = |e: &dyn std::fmt::Display| TcpTransportError::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?;
    let builder = if insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(skip_verification(crypto_provider()))
    } else {
        builder.with_root_certificates(trust_anchors(root_cas)?)
    };
    match client_certificate {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certificates(cert)?, read_key(key)?)
            .map_err(|e| TcpTransportError::Tls(format!("client certificate {cert}: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}
