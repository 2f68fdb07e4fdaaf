//! UDP entry points: one session per client address, each with its own connected socket to
//! the server chosen when the session began, ended after `udp.timeout` without traffic.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::router::UdpRoute;

/// Traefik's default `udp.timeout`.
pub const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// Serves `socket` until `shutdown` turns true. `route` gives the entry point's UDP router in
/// the current configuration (looked up when a session starts; sessions keep their server).
pub async fn serve_udp<F>(
    socket: UdpSocket,
    entry_point: String,
    idle_timeout: Duration,
    route: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn() -> Option<Arc<UdpRoute>>,
{
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::new(Mutex::new(HashMap::new()));
    let started = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems; keep serving.
                    tracing::debug!(entry_point = %entry_point, error = %e, "UDP receive failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let existing = lock(&sessions).get(&client).cloned();
        let session = match existing {
            Some(session) => session,
            None => {
                let Some(route) = route() else {
                    tracing::debug!(entry_point = %entry_point, client = %client, "no UDP router; datagram dropped");
                    continue;
                };
                match open_session(&route, client, &socket, &sessions, idle_timeout, started).await
                {
                    Ok(session) => session,
                    Err(e) => {
                        tracing::debug!(router = %route.name, error = %e, "UDP backend unreachable; datagram dropped");
                        continue;
                    }
                }
            }
        };
        session.touch(started);
        if let Err(e) = session.backend.send(&buf[..n]).await {
            tracing::debug!(client = %client, error = %e, "sending to the UDP backend failed");
        }
    }
    // Sessions end with their tasks: dropping the map's handles is not enough, so they watch
    // the same shutdown signal.
    lock(&sessions).clear();
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

struct Session {
    backend: UdpSocket,
    /// Milliseconds since the entry point started, at the last datagram either way.
    last_activity: AtomicU64,
}

impl Session {
    fn touch(&self, started: Instant) {
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity.store(now, Ordering::Relaxed);
    }

    fn idle_since(&self, started: Instant) -> Instant {
        started + Duration::from_millis(self.last_activity.load(Ordering::Relaxed))
    }
}

async fn open_session(
    route: &UdpRoute,
    client: SocketAddr,
    listener: &Arc<UdpSocket>,
    sessions: &Sessions,
    idle_timeout: Duration,
    started: Instant,
) -> std::io::Result<Arc<Session>> {
    let server = route.service.pick();
    let target = tokio::net::lookup_host(server)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{server} resolves to no address")))?;
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let backend = UdpSocket::bind(local).await?;
    backend.connect(target).await?;
    let session = Arc::new(Session {
        backend,
        last_activity: AtomicU64::new(0),
    });
    session.touch(started);
    lock(sessions).insert(client, session.clone());
    tokio::spawn(answer_client(
        session.clone(),
        client,
        listener.clone(),
        sessions.clone(),
        idle_timeout,
        started,
    ));
    Ok(session)
}

/// Sends the backend's datagrams back to `client` from the entry point's socket until the
/// session has been idle for `idle_timeout`.
async fn answer_client(
    session: Arc<Session>,
    client: SocketAddr,
    listener: Arc<UdpSocket>,
    sessions: Sessions,
    idle_timeout: Duration,
    started: Instant,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let deadline = session.idle_since(started) + idle_timeout;
        match tokio::time::timeout_at(deadline, session.backend.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                session.touch(started);
                if let Err(e) = listener.send_to(&buf[..n], client).await {
                    tracing::debug!(client = %client, error = %e, "sending to the UDP client failed");
                }
            }
            // The backend refused (ICMP port unreachable): keep the session, it may come back.
            Ok(Err(e)) => {
                tracing::debug!(client = %client, error = %e, "UDP backend receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                // Traffic from the client may have refreshed the session meanwhile.
                if session.idle_since(started) + idle_timeout <= Instant::now() {
                    break;
                }
            }
        }
        if Arc::strong_count(&session) == 1 {
            // The entry point stopped and dropped its sessions.
            return;
        }
    }
    let mut map = lock(&sessions);
    if map
        .get(&client)
        .is_some_and(|current| Arc::ptr_eq(current, &session))
    {
        map.remove(&client);
    }
    tracing::trace!(client = %client, "UDP session expired");
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Session>>> {
    sessions.lock().unwrap_or_else(|p| p.into_inner())
}
