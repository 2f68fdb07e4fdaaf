//! The TCP side of an entry point: the PROXY header, then TCP routers before HTTP ones.
//!
//! Only entry points whose snapshot has TCP routers come here; the others serve HTTP without
//! any added peek or system call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};
use viaduct_rules::TcpFacts;
use viaduct_tcp::{serve_route, TcpEntryPointRoutes, TlsDecision, TlsMode};

use crate::entrypoint::{EntryPointRuntime, ProxyProtocolTrust};
use crate::listener::{self, Shutdown};
use crate::snapshot::SnapshotHandle;

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// A ClientHello fits in one TLS record (16 KiB) plus its 5-byte header.
const MAX_CLIENT_HELLO: usize = 16 * 1024 + 5;

/// Reads the PROXY header if the connection has one. Returns the real client address (the
/// socket's peer when there is no header or it says `LOCAL`), or `None` when the connection
/// must be closed: a malformed header, or a header from a sender that is not trusted.
pub(crate) async fn proxy_header(
    stream: &mut TcpStream,
    peer: SocketAddr,
    trust: &ProxyProtocolTrust,
    limit: Duration,
) -> Option<SocketAddr> {
    match viaduct_tcp::proxy_protocol::read_header(stream, limit).await {
        Ok(None) => Some(peer),
        Ok(Some(_)) if !trust.trusts(peer.ip()) => {
            tracing::debug!(peer = %peer, "PROXY header from a sender not in proxyProtocol.trustedIPs; connection closed");
            None
        }
        Ok(Some(viaduct_tcp::ProxyHeader::Proxied { source, .. })) => Some(source),
        Ok(Some(viaduct_tcp::ProxyHeader::Local)) => Some(peer),
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "invalid PROXY header; connection closed");
            None
        }
    }
}

/// Routes a connection on an entry point with TCP routers. Returns the stream when it is for
/// the HTTP side; `None` once a TCP router has served it (or it was dropped).
pub(crate) async fn dispatch(
    stream: TcpStream,
    client: SocketAddr,
    routes: Arc<TcpEntryPointRoutes>,
    snapshots: &SnapshotHandle,
    limit: Duration,
) -> Option<TcpStream> {
    let local = stream.local_addr().ok()?;
    let plain_facts = TcpFacts {
        sni: None,
        client_ip: Some(client.ip()),
        alpn: &[],
    };
    if routes.serves_without_peeking() {
        if let Some(route) = routes.plain.find(&plain_facts).cloned() {
            drop(routes);
            serve_route(route, stream, client, local).await;
            return None;
        }
    }
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return None,
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        let route = routes.plain.find(&plain_facts).cloned();
        drop(routes);
        return match route {
            Some(route) => {
                serve_route(route, stream, client, local).await;
                None
            }
            None => Some(stream),
        };
    }
    if routes.tls.is_empty() {
        return Some(stream);
    }
    let Some(hello) = peek_client_hello(&stream, limit).await else {
        // Not a ClientHello we can read: the TLS side reports the failure.
        return Some(stream);
    };
    let alpn: Vec<&str> = hello.alpn.iter().map(String::as_str).collect();
    if !alpn.is_empty() && alpn.iter().all(|p| *p == viaduct_rules::ACME_TLS_ALPN) {
        return Some(stream);
    }
    let facts = TcpFacts {
        sni: hello.sni.as_deref(),
        client_ip: Some(client.ip()),
        alpn: &alpn,
    };
    let decision = routes.route_tls(&facts);
    drop(routes);
    let route = match decision {
        TlsDecision::Https => return Some(stream),
        TlsDecision::Tcp(route) => route,
    };
    match route.tls {
        TlsMode::Passthrough | TlsMode::None => serve_route(route, stream, client, local).await,
        TlsMode::Terminate { .. } => {
            match tokio::time::timeout(limit, listener::tls_handshake(stream, snapshots)).await {
                Ok(Ok(tls)) => serve_route(route, tls, client, local).await,
                Ok(Err(e)) => tracing::debug!(peer = %client, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(peer = %client, "TLS handshake timed out"),
            }
        }
    }
    None
}

/// What TCP rules look at in a ClientHello.
struct Hello {
    sni: Option<String>,
    alpn: Vec<String>,
}

/// Reads the ClientHello without consuming it, so that a passthrough backend or the TLS
/// acceptor sees the connection from its first byte.
async fn peek_client_hello(stream: &TcpStream, limit: Duration) -> Option<Hello> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 2048];
    let mut seen = 0;
    let mut backoff = Duration::from_millis(1);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        let mut acceptor = rustls::server::Acceptor::default();
        let mut reader = &buf[..n];
        while !reader.is_empty() {
            match acceptor.read_tls(&mut reader) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                return Some(Hello {
                    sni: hello.server_name().map(str::to_ascii_lowercase),
                    alpn: hello
                        .alpn()
                        .map(|protocols| {
                            protocols
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
            Ok(None) => {}
            Err(_) => return None,
        }
        if n == buf.len() && buf.len() < MAX_CLIENT_HELLO {
            buf.resize(MAX_CLIENT_HELLO, 0);
        } else if n == seen {
            // Peeking returns at once while bytes are buffered: wait for the rest of a
            // ClientHello split across segments instead of spinning.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
        seen = n;
    }
}

/// Binds a UDP entry point's socket (at start, never re-bound on reload).
pub fn bind_udp(ep: &EntryPointRuntime) -> std::io::Result<UdpSocket> {
    let addr = ep.address;
    let socket = match socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    ) {
        Ok(s) => s,
        Err(_) if ep.all_interfaces => return bind_udp_v4(ep),
        Err(e) => return Err(e),
    };
    if ep.all_interfaces && addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    if ep.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.bind(&addr.into()) {
        if ep.all_interfaces && addr.is_ipv6() && e.kind() == std::io::ErrorKind::AddrNotAvailable {
            return bind_udp_v4(ep);
        }
        return Err(e);
    }
    UdpSocket::from_std(socket.into())
}

fn bind_udp_v4(ep: &EntryPointRuntime) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], ep.address.port())))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Serves a UDP entry point until `shutdown`: sessions go to the entry point's UDP router in
/// the configuration current when each session starts.
pub async fn serve_udp(
    socket: UdpSocket,
    ep: Arc<EntryPointRuntime>,
    snapshots: SnapshotHandle,
    shutdown: Shutdown,
) {
    let index = ep.index;
    let route = move || {
        snapshots
            .load()
            .entry_points
            .get(index)
            .and_then(|routes| routes.tcp.as_ref())
            .and_then(|tcp| tcp.udp.clone())
    };
    viaduct_tcp::serve_udp(socket, ep.name.clone(), ep.udp_timeout, route, shutdown).await;
}
