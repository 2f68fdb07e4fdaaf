use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};

use crate::checksum::Checksum;
use crate::error::TestkitError;
use crate::pattern_body::PatternBody;

/// What the echo backend does with each request. Each field can also be chosen per request with a
/// header (`x-echo-status`, `x-echo-delay-ms`, `x-echo-body-bytes`, `x-echo-hang`, `x-echo-abort`),
/// which is how one backend serves many cases.
#[derive(Debug, Clone, Default)]
pub struct EchoBehavior {
    /// Status of the answer (default 200).
    pub status: Option<u16>,
    /// Wait this long before sending the response headers.
    pub delay: Duration,
    /// Answer with this many pattern bytes (see [`crate::pattern_byte`]) instead of the JSON report.
    pub body_bytes: Option<u64>,
    /// Never answer.
    pub hang: bool,
    /// Drop the connection without any response.
    pub abort: bool,
}

/// What the backend received, as it answers it in JSON (and keeps it for [`EchoBackend::received`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReport {
    pub backend: String,
    pub method: String,
    /// The request target as received: HTTP/1 keeps the absolute form if it was used; HTTP/2
    /// gives `:path` (its `:authority` is in [`EchoReport::authority`]).
    pub uri: String,
    /// `:authority` of an HTTP/2 request, or the authority of an absolute-form HTTP/1 target.
    pub authority: Option<String>,
    /// `HTTP/1.1`, `HTTP/2.0`, …
    pub version: String,
    /// Every header in the order hyper exposes them (lower-case names, repeated names repeated).
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    /// [`Checksum::hex`] of the body.
    pub body_checksum: String,
}

/// An HTTP backend that answers every request with an [`EchoReport`] and a `x-backend: NAME`
/// header. It speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port.
#[derive(Debug)]
pub struct EchoBackend {
    name: String,
    addr: SocketAddr,
    received: Arc<Mutex<Vec<EchoReport>>>,
    accept_loop: AbortHandle,
    ca_pem: Option<String>,
}

impl EchoReport {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn from_json(body: &[u8]) -> crate::Result<Self> {
        serde_json::from_slice(body).map_err(|source| TestkitError::EchoReport {
            body: String::from_utf8_lossy(body).chars().take(500).collect(),
            source,
        })
    }
}

impl EchoBackend {
    /// Starts a backend named `name` on 127.0.0.1 with a free port.
    pub async fn start(name: &str) -> crate::Result<Self> {
        Self::start_with(name, EchoBehavior::default()).await
    }

    pub async fn start_with(name: &str, behavior: EchoBehavior) -> crate::Result<Self> {
        Self::start_at(name, SocketAddr::from(([127, 0, 0, 1], 0)), behavior).await
    }

    /// Starts a backend on `addr`: with the address of a backend that was dropped, this is
    /// the same server coming back.
    pub async fn start_at(
        name: &str,
        addr: SocketAddr,
        behavior: EchoBehavior,
    ) -> crate::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| TestkitError::io(format!("binding echo backend {name}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io(format!("address of echo backend {name}"), e))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            name: name.to_string(),
            behavior,
            received: Arc::clone(&received),
        });
        let accept_loop = tokio::spawn(accept_loop(listener, state, None)).abort_handle();
        Ok(Self {
            name: name.to_string(),
            addr,
            received,
            accept_loop,
            ca_pem: None,
        })
    }

    /// Like [`EchoBackend::start`], but serving TLS (ALPN h2 and http/1.1) with a fresh
    /// self-signed certificate for `localhost` and `127.0.0.1`; [`EchoBackend::ca_pem`] is the
    /// certificate to trust.
    pub async fn start_tls(name: &str) -> crate::Result<Self> {
        let (acceptor, ca_pem) = crate::tls::self_signed_acceptor()?;
        let mut backend = Self::start(name).await?;
        backend.accept_loop.abort();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TestkitError::io(format!("binding TLS echo backend {name}"), e))?;
        backend.addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io(format!("address of TLS echo backend {name}"), e))?;
        let state = Arc::new(State {
            name: name.to_string(),
            behavior: EchoBehavior::default(),
            received: Arc::clone(&backend.received),
        });
        backend.accept_loop =
            tokio::spawn(accept_loop(listener, state, Some(acceptor))).abort_handle();
        backend.ca_pem = Some(ca_pem);
        Ok(backend)
    }

    /// `https://127.0.0.1:PORT` for a backend started with [`EchoBackend::start_tls`].
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM certificate a client must trust to reach a TLS backend.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `h2c://127.0.0.1:PORT`, the scheme Traefik uses for HTTP/2 cleartext backends.
    pub fn h2c_url(&self) -> String {
        format!("h2c://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<EchoReport> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn hits(&self) -> usize {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_loop.abort();
    }
}

struct State {
    name: String,
    behavior: EchoBehavior,
    received: Arc<Mutex<Vec<EchoReport>>>,
}

type EchoBody = BoxBody<Bytes, Infallible>;

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            // Connection errors (client gone, deliberate abort) end only this connection.
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<EchoBody>, TestkitError> {
    let behavior = behavior_for(&state.behavior, &req);
    let (parts, mut body) = req.into_parts();
    let mut checksum = Checksum::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TestkitError::Http {
            url: parts.uri.to_string(),
            reason: format!("reading the request body: {e}"),
        })?;
        if let Some(data) = frame.data_ref() {
            checksum.update(data);
        }
    }
    let report = EchoReport {
        backend: state.name.clone(),
        method: parts.method.to_string(),
        uri: if parts.version == http::Version::HTTP_2 {
            parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default()
        } else {
            parts.uri.to_string()
        },
        authority: parts.uri.authority().map(|a| a.to_string()),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len: checksum.len(),
        body_checksum: checksum.hex(),
    };
    state
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(report.clone());

    if behavior.abort {
        return Err(TestkitError::Http {
            url: report.uri,
            reason: "aborting the connection as asked".into(),
        });
    }
    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    if behavior.hang {
        std::future::pending::<()>().await;
    }
    let status = StatusCode::from_u16(behavior.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
    let builder = Response::builder()
        .status(status)
        .header("x-backend", state.name.as_str());
    let response = match behavior.body_bytes {
        Some(len) => builder
            .header("content-type", "application/octet-stream")
            .body(PatternBody::new(len).boxed()),
        None => builder
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&report).unwrap_or_default())).boxed()),
    };
    response.map_err(|e| TestkitError::Http {
        url: report.uri,
        reason: format!("building the response: {e}"),
    })
}

fn behavior_for(defaults: &EchoBehavior, req: &Request<Incoming>) -> EchoBehavior {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let mut behavior = defaults.clone();
    if let Some(status) = header("x-echo-status").and_then(|v| v.parse().ok()) {
        behavior.status = Some(status);
    }
    if let Some(ms) = header("x-echo-delay-ms").and_then(|v| v.parse().ok()) {
        behavior.delay = Duration::from_millis(ms);
    }
    if let Some(len) = header("x-echo-body-bytes").and_then(|v| v.parse().ok()) {
        behavior.body_bytes = Some(len);
    }
    behavior.hang |= header("x-echo-hang").is_some();
    behavior.abort |= header("x-echo-abort").is_some();
    behavior
}
