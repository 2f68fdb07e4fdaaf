//! Accepting connections on an entry point and serving HTTP/1.1 and h2c on them.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;
use viaduct_upstream::Body;

use crate::deadline::{DeadlineBody, DeadlineError, DeadlineIo, Expired, WriteDeadline};
use crate::entrypoint::EntryPointRuntime;
use crate::handler::{self, ConnectionContext};
use crate::http1::{self, Outcome};
use crate::snapshot::SnapshotHandle;
use crate::tcp_entry;

/// Tells entry points to stop accepting and drain. Send `true` once.
pub type Shutdown = watch::Receiver<bool>;

/// Traefik's default `http2.maxConcurrentStreams`.
const MAX_CONCURRENT_STREAMS: u32 = 250;

/// Binds the entry point's listener. Done once at start: listeners are never re-bound on
/// reload, so a reload cannot lose a port.
pub fn bind(ep: &EntryPointRuntime) -> io::Result<TcpListener> {
    let addr = ep.address;
    let socket = match Socket::new(Domain::for_address(addr), Type::STREAM, None) {
        Ok(s) => s,
        // No IPv6 on this host: `:port` falls back to every IPv4 address.
        Err(_) if ep.all_interfaces => return bind_v4_fallback(ep),
        Err(e) => return Err(e),
    };
    if ep.all_interfaces && addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    if ep.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.bind(&addr.into()) {
        if ep.all_interfaces && addr.is_ipv6() && e.kind() == io::ErrorKind::AddrNotAvailable {
            return bind_v4_fallback(ep);
        }
        return Err(e);
    }
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

fn bind_v4_fallback(ep: &EntryPointRuntime) -> io::Result<TcpListener> {
    let addr = SocketAddr::from(([0, 0, 0, 0], ep.address.port()));
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

/// Serves `listener` until `shutdown` says so, then drains open connections for the entry
/// point's `graceTimeOut` and closes whatever is left.
pub async fn serve(
    listener: TcpListener,
    ep: Arc<EntryPointRuntime>,
    snapshots: SnapshotHandle,
    mut shutdown: Shutdown,
) {
    let builder = Arc::new(connection_builder(&ep));
    let own_http1 = crate::http1::enabled();
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let watcher = graceful.watcher();
                    let accepted = Accepted {
                        stream,
                        peer,
                        entry_point: ep.clone(),
                        snapshots: snapshots.clone(),
                        shutdown: own_http1.then(|| shutdown.clone()),
                    };
                    let builder = builder.clone();
                    tokio::spawn(async move { serve_connection(accepted, &builder, watcher).await });
                }
                Err(e) => accept_error(&ep, e).await,
            },
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let open = graceful.count();
    if open > 0 {
        tracing::info!(entry_point = %ep.name, open, grace = ?ep.grace_timeout, "draining connections");
    }
    if tokio::time::timeout(ep.grace_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(entry_point = %ep.name, "graceTimeOut elapsed; closing the remaining connections");
    }
}

/// A connection just accepted, before we know whether it speaks TLS.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    entry_point: Arc<EntryPointRuntime>,
    snapshots: SnapshotHandle,
    /// Set when plain connections use Viaduct's HTTP/1.1 server (which watches for shutdown
    /// itself); `None` puts them on hyper's.
    shutdown: Option<Shutdown>,
}

/// The longest a client may take to send its first byte and finish a TLS handshake (bounded
/// further by `readTimeout`): a stalled handshake must not hold a connection for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

async fn serve_connection(
    accepted: Accepted,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) {
    let Accepted {
        mut stream,
        mut peer,
        entry_point,
        snapshots,
        shutdown,
    } = accepted;
    // `traefik_open_connections`: counted while this task lives.
    let _open = entry_point.observer.connection_opened();
    let _ = stream.set_nodelay(true);
    let limit = entry_point
        .read_timeout
        .map_or(HANDSHAKE_TIMEOUT, |t| t.min(HANDSHAKE_TIMEOUT));
    // From here on `peer` is the real client: the HTTP side sees it as such.
    if let Some(trust) = &entry_point.proxy_protocol {
        match tcp_entry::proxy_header(&mut stream, peer, trust, limit).await {
            Some(client) => peer = client,
            None => return,
        }
    }
    let tcp_routes = snapshots
        .load()
        .entry_points
        .get(entry_point.index)
        .and_then(|routes| routes.tcp.clone())
        .filter(|routes| !routes.is_empty());
    if let Some(routes) = tcp_routes {
        // `watcher` stays held while a TCP router relays: graceful shutdown waits for it too.
        match Box::pin(tcp_entry::dispatch(stream, peer, routes, &snapshots, limit)).await {
            Some(http) => stream = http,
            None => return,
        }
    }
    // Every entry point takes both plain HTTP and TLS, as Traefik's do: the first byte tells.
    let mut first = [0u8; 1];
    let is_tls = match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == TLS_HANDSHAKE_RECORD,
        _ => return,
    };
    let context = |client_certificates, tls_labels| {
        Arc::new(ConnectionContext {
            entry_point,
            snapshots: snapshots.clone(),
            peer,
            peer_value: crate::forwarded::ip_value(peer.ip()),
            tls: is_tls,
            client_certificates,
            tls_labels,
            heads_checked: false,
        })
    };
    if !is_tls {
        let mut conn = context(None, None);
        // The hyper and TLS paths are boxed: an idle connection's task is only as large as
        // the path it is on.
        let Some(shutdown) = shutdown else {
            Box::pin(serve_http(TokioIo::new(stream), conn, builder, watcher)).await;
            return;
        };
        if let Some(own) = Arc::get_mut(&mut conn) {
            own.heads_checked = true;
        }
        // `watcher` stays held while the connection lives: graceful shutdown waits for it.
        if let Outcome::Http2(io) = http1::serve(stream, conn.clone(), shutdown).await {
            // hyper's HTTP/2 server checks less than ours: the handler checks again.
            let conn = Arc::new(ConnectionContext {
                heads_checked: false,
                ..(*conn).clone()
            });
            Box::pin(serve_http(TokioIo::new(io), conn, builder, watcher)).await;
        }
        return;
    }
    let tls_snapshots = snapshots.clone();
    Box::pin(serve_tls(
        stream,
        limit,
        tls_snapshots,
        peer,
        context,
        builder,
        watcher,
    ))
    .await;
}

async fn serve_tls(
    stream: TcpStream,
    limit: Duration,
    snapshots: SnapshotHandle,
    peer: SocketAddr,
    context: impl FnOnce(
        Option<Arc<[rustls::pki_types::CertificateDer<'static>]>>,
        Option<viaduct_observe::TlsLabels>,
    ) -> Arc<ConnectionContext>,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) {
    match tokio::time::timeout(limit, tls_handshake(stream, &snapshots)).await {
        Ok(Ok(tls)) => {
            // Kept only when the client sent one (mTLS), for `passTLSClientCert`.
            let certificates = tls
                .get_ref()
                .1
                .peer_certificates()
                .filter(|chain| !chain.is_empty())
                .map(|chain| Arc::from(chain.to_vec()));
            let session = tls.get_ref().1;
            let labels = tls_labels(session);
            serve_http(
                TokioIo::new(tls),
                context(certificates, labels),
                builder,
                watcher,
            )
            .await
        }
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
    }
}

/// Reads the ClientHello, picks the configuration for its SNI from the current snapshot
/// (certificate and options), and completes the handshake.
pub(crate) async fn tls_handshake(
    stream: TcpStream,
    snapshots: &SnapshotHandle,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let local = stream.local_addr()?.ip();
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let snapshot = snapshots.load_full();
    // A TLS-ALPN-01 validation offers only `acme-tls/1` (RFC 8737) and is answered with the challenge certificate.
    let acme_validation = start
        .client_hello()
        .alpn()
        .is_some_and(|mut protocols| protocols.all(|p| p == viaduct_tls::ACME_TLS_ALPN));
    let challenge = acme_validation
        .then(|| snapshot.tls.acme().alpn_challenge_config(sni.as_deref()))
        .flatten();
    let Some(config) = challenge.or_else(|| snapshot.tls.server_config_at(sni.as_deref(), local))
    else {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("no certificate for server name {sni:?} (sniStrict)"),
        ));
    };
    start.into_stream(config).await
}

async fn serve_http<I>(
    io: I,
    conn: Arc<ConnectionContext>,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // Only with `writeTimeout`: the connection's I/O then fails writes past the deadline.
    let write_deadline = conn
        .entry_point
        .write_timeout
        .map(|_| Arc::new(WriteDeadline::default()));
    let io = DeadlineIo::new(io, write_deadline.clone());
    let service =
        service_fn(move |request| exchange(request, conn.clone(), write_deadline.clone()));
    let connection = builder.serve_connection_with_upgrades(io, service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// One request on hyper's server (TLS, h2c, or plain with `VIADUCT_HTTP1_SERVER=hyper`), with
/// `readTimeout` over its body and `writeTimeout` over the exchange. On HTTP/2 they apply per
/// stream, as in Go. An error makes hyper close the HTTP/1.1 connection without an answer, or
/// reset the HTTP/2 stream. `connection_deadline` is the HTTP/1.1 connection's write deadline.
async fn exchange(
    request: http::Request<hyper::body::Incoming>,
    conn: Arc<ConnectionContext>,
    connection_deadline: Option<Arc<WriteDeadline>>,
) -> Result<http::Response<Body>, DeadlineError> {
    let ep = &conn.entry_point;
    // The clock is read only when a deadline is needed: `readTimeout` is on by default, but most
    // requests have no body.
    let write_deadline = ep
        .write_timeout
        .map(|limit| (Instant::now() + limit, limit));
    let http1 = request.version() < http::Version::HTTP_2;
    let connection_deadline = connection_deadline.filter(|_| http1);
    if let Some(deadline) = &connection_deadline {
        deadline.set(write_deadline.map(|(at, _)| at));
    }
    let mut expired = None;
    let request = match ep.read_timeout {
        // hyper has read the head: the body's deadline counts from here.
        Some(limit) if !http_body::Body::is_end_stream(request.body()) => {
            let reported = Expired::default();
            expired = Some(reported.clone());
            let at = Instant::now() + limit;
            request.map(|body| {
                Body::boxed(
                    DeadlineBody::new(body, at, DeadlineError::Read(limit)).reporting(reported),
                )
            })
        }
        _ => request.map(Body::Incoming),
    };
    let handled = handler::handle(request, conn.clone());
    let mut response = match write_deadline {
        None => handled.await,
        Some((at, limit)) => tokio::time::timeout_at(at, handled)
            .await
            .map_err(|_| DeadlineError::Write(limit))?,
    };
    if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        // The connection becomes a tunnel: Go clears its deadlines when it is hijacked.
        if let Some(deadline) = &connection_deadline {
            deadline.set(None);
        }
        return Ok(response);
    }
    if expired.is_some_and(|e| e.is_set()) {
        response = crate::responses::for_status(http::StatusCode::REQUEST_TIMEOUT);
        if http1 {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
    }
    match write_deadline {
        Some((at, limit)) if !http_body::Body::is_end_stream(response.body()) => {
            Ok(response.map(|body| {
                Body::boxed(DeadlineBody::new(body, at, DeadlineError::Write(limit)).armed())
            }))
        }
        _ => Ok(response),
    }
}

/// Go's names for the negotiated version and cipher (`1.3`, `TLS_AES_128_GCM_SHA256`), as
/// Traefik labels its TLS metrics.
fn tls_labels(session: &rustls::ServerConnection) -> Option<viaduct_observe::TlsLabels> {
    let version = match session.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "1.3",
        rustls::ProtocolVersion::TLSv1_2 => "1.2",
        rustls::ProtocolVersion::TLSv1_1 => "1.1",
        rustls::ProtocolVersion::TLSv1_0 => "1.0",
        _ => "unknown",
    };
    let suite = session.negotiated_cipher_suite()?.suite().as_str()?;
    let cipher = match suite.strip_prefix("TLS13_") {
        Some(rest) => viaduct_observe::TlsLabels::tls13_cipher(rest),
        None => suite,
    };
    Some(viaduct_observe::TlsLabels { version, cipher })
}

async fn stopped(shutdown: &mut Shutdown) {
    // A closed channel also means stop: nobody is left to say otherwise.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn connection_builder(ep: &EntryPointRuntime) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper has one timer for the request head, which also runs while a kept-alive
        // connection waits for its next request: `readTimeout` bounds both, and `idleTimeout`
        // takes over when `readTimeout` is disabled.
        .header_read_timeout(ep.read_timeout.or(ep.idle_timeout))
        .max_buf_size(ep.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(ep.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Accept errors are usually transient (a client that reset, or file descriptors running out);
/// back off briefly rather than spin.
async fn accept_error(ep: &EntryPointRuntime, e: io::Error) {
    tracing::warn!(entry_point = %ep.name, error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(20)).await;
}
