//! Connection pools of the inline HTTP/1.1 client: one [`HostPool`] per backend authority.
//!
//! The request path reaches its `HostPool` without a lock: a [`Server`] caches the
//! `Arc<HostPool>` of its transport on first use, so the `RwLock`ed map below is only read
//! once per server and snapshot, and written when a new backend appears. Idle connections
//! sit in a bounded lock-free queue, so several worker threads can check connections out of
//! the same host concurrently.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_queue::ArrayQueue;
use http::uri::Authority;
use tokio::net::TcpStream;

use super::H1Error;
use crate::server::Server;

/// Room for a typical response head and a small body in one read.
const INITIAL_READ_BUFFER: usize = 8 * 1024;
/// Room for a typical request head.
const INITIAL_WRITE_BUFFER: usize = 1024;
/// TCP keep-alive probes on backend connections, as Go's dialer (and so Traefik) sets them.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// The pool settings a servers transport hands to its inline client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolSettings {
    /// Idle connections kept per host; `0` disables reuse.
    pub max_idle_per_host: usize,
    pub idle_timeout: Option<Duration>,
    pub dial_timeout: Option<Duration>,
}

/// Every host pool of one servers transport.
pub(crate) struct Pool {
    /// Tells this pool's `HostPool`s apart from another transport's in a [`Server`]'s cache.
    id: u64,
    settings: PoolSettings,
    hosts: RwLock<HashMap<Authority, Arc<HostPool>>>,
}

/// The idle connections to one backend authority.
pub(crate) struct HostPool {
    pool_id: u64,
    pub(crate) authority: Authority,
    /// The host without IPv6 brackets, as the resolver wants it.
    connect_host: String,
    connect_port: u16,
    settings: PoolSettings,
    /// `None` when reuse is disabled (`ArrayQueue` cannot have a capacity of zero).
    idle: Option<ArrayQueue<Box<Conn>>>,
}

/// One connection to a backend with its buffers, which live as long as the connection so
/// that a reused connection allocates nothing. Always boxed: a response body carries its
/// connection, and a pointer is cheaper to move through the request path than the struct.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) read_buf: BytesMut,
    pub(crate) write_buf: Vec<u8>,
    idle_since: Instant,
}

impl Pool {
    pub(crate) fn new(settings: PoolSettings) -> Pool {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Pool {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            settings,
            hosts: RwLock::new(HashMap::new()),
        }
    }

    /// The host pool of `server`, cached in the server after the first call.
    pub(crate) fn host_for(&self, server: &Server) -> Arc<HostPool> {
        if let Some(host) = server.h1_host.get() {
            if host.pool_id == self.id {
                return host.clone();
            }
            // The server is used with another transport than the one it cached: rare, and
            // correct through the map.
            return self.host(&server.authority);
        }
        let host = self.host(&server.authority);
        // A concurrent first request may have won the race; both got the same pool.
        let _ = server.h1_host.set(host.clone());
        host
    }

    /// The host pool for `authority`, created on first use.
    pub(crate) fn host(&self, authority: &Authority) -> Arc<HostPool> {
        {
            let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(host) = hosts.get(authority) {
                return host.clone();
            }
        }
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = hosts.get(authority) {
            return host.clone();
        }
        // A new backend usually means a reload removed others: forget hosts that nobody
        // references any more (no server caches them, no response body is in flight), which
        // closes their idle connections.
        hosts.retain(|_, host| Arc::strong_count(host) > 1);
        let host = Arc::new(HostPool::new(self.id, authority.clone(), self.settings));
        hosts.insert(authority.clone(), host.clone());
        host
    }
}

impl HostPool {
    fn new(pool_id: u64, authority: Authority, settings: PoolSettings) -> HostPool {
        let host = authority.host();
        let connect_host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        HostPool {
            pool_id,
            connect_port: authority.port_u16().unwrap_or(80),
            authority,
            connect_host,
            settings,
            idle: (settings.max_idle_per_host > 0)
                .then(|| ArrayQueue::new(settings.max_idle_per_host)),
        }
    }

    /// An idle connection that is still usable, if any. Expired connections and connections
    /// the backend closed (as far as the runtime already knows) are dropped on the way.
    pub(crate) fn checkout(&self) -> Option<Box<Conn>> {
        let idle = self.idle.as_ref()?;
        while let Some(conn) = idle.pop() {
            let expired = self
                .settings
                .idle_timeout
                .is_some_and(|limit| conn.idle_since.elapsed() >= limit);
            if !expired && conn.looks_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection whose exchange completed cleanly back into the pool. When the pool
    /// is full the connection is closed.
    pub(crate) fn release(&self, mut conn: Box<Conn>) {
        if let Some(idle) = &self.idle {
            conn.idle_since = Instant::now();
            let _ = idle.push(conn);
        }
    }

    /// Opens a new connection, within the dial timeout.
    pub(crate) async fn connect(&self) -> Result<Box<Conn>, H1Error> {
        let connect = TcpStream::connect((self.connect_host.as_str(), self.connect_port));
        let stream = match self.settings.dial_timeout {
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .map_err(|_| H1Error::ConnectTimeout(limit))?,
            None => connect.await,
        }
        .map_err(H1Error::Connect)?;
        configure(&stream).map_err(H1Error::Connect)?;
        Ok(Box::new(Conn {
            stream,
            read_buf: BytesMut::with_capacity(INITIAL_READ_BUFFER),
            write_buf: Vec::with_capacity(INITIAL_WRITE_BUFFER),
            idle_since: Instant::now(),
        }))
    }

    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.as_ref().map_or(0, ArrayQueue::len)
    }
}

impl Conn {
    /// False when the backend closed the connection or sent bytes nobody asked for. Costs no
    /// system call unless the runtime has seen the socket become readable, which an idle
    /// keep-alive connection only does when something happened to it.
    fn looks_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HostPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostPool")
            .field("authority", &self.authority)
            .field("idle", &self.idle.as_ref().map_or(0, ArrayQueue::len))
            .finish_non_exhaustive()
    }
}
