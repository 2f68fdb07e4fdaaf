//! Active health checks of TCP load balancers (`healthCheck{port, send, expect, interval,
//! unhealthyInterval, timeout}`): a server is up while Viaduct can connect to it (and, with
//! `send`/`expect`, gets the expected answer). Servers that are down are not picked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::AbortHandle;
use viaduct_config::{decode_value, GoDuration, Origin};

use crate::service::TcpServer;
use crate::transport::TcpTransport;

/// Traefik's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A compiled `healthCheck` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpHealthCheck {
    /// Checks this port instead of the server's.
    pub port: Option<u16>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub interval: Duration,
    /// The interval while a server is down (defaults to `interval`).
    pub unhealthy_interval: Duration,
    pub timeout: Duration,
}

/// The up/down state of a load balancer's servers, updated by its checker task. The task
/// stops when the state is dropped (with the last configuration using the load balancer).
#[derive(Debug)]
pub struct HealthState {
    up: Box<[AtomicBool]>,
    checker: Option<AbortHandle>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Options {
    port: Option<u16>,
    send: String,
    expect: String,
    interval: Option<GoDuration>,
    unhealthy_interval: Option<GoDuration>,
    timeout: Option<GoDuration>,
}

impl TcpHealthCheck {
    pub fn from_config(value: &serde_json::Value) -> Result<TcpHealthCheck, String> {
        let value = match value {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            other => other.clone(),
        };
        let options: Options = decode_value(value, Origin::Inline("TCP healthCheck"))
            .map_err(|e| format!("healthCheck: {e}"))?;
        let interval = options
            .interval
            .and_then(GoDuration::positive)
            .unwrap_or(DEFAULT_INTERVAL);
        Ok(TcpHealthCheck {
            port: options.port,
            send: Some(options.send).filter(|s| !s.is_empty()),
            expect: Some(options.expect).filter(|s| !s.is_empty()),
            interval,
            unhealthy_interval: options
                .unhealthy_interval
                .and_then(GoDuration::positive)
                .unwrap_or(interval),
            timeout: options
                .timeout
                .and_then(GoDuration::positive)
                .unwrap_or(DEFAULT_TIMEOUT),
        })
    }
}

impl HealthState {
    /// Starts checking `servers` (all considered up until a check fails). Without a Tokio
    /// runtime (offline compiles) nothing is checked.
    pub fn start(
        check: TcpHealthCheck,
        servers: Vec<TcpServer>,
        transport: Arc<TcpTransport>,
    ) -> Arc<HealthState> {
        let up: Box<[AtomicBool]> = servers.iter().map(|_| AtomicBool::new(true)).collect();
        Arc::new_cyclic(|weak: &std::sync::Weak<HealthState>| {
            let checker = tokio::runtime::Handle::try_current().ok().map(|runtime| {
                let weak = weak.clone();
                runtime
                    .spawn(run(check, servers, transport, weak))
                    .abort_handle()
            });
            HealthState { up, checker }
        })
    }

    pub fn is_up(&self, index: usize) -> bool {
        self.up
            .get(index)
            .is_none_or(|flag| flag.load(Ordering::Relaxed))
    }

    /// Whether any server is up.
    pub fn any_up(&self) -> bool {
        self.up.iter().any(|flag| flag.load(Ordering::Relaxed))
    }
}

impl Drop for HealthState {
    fn drop(&mut self) {
        if let Some(checker) = &self.checker {
            checker.abort();
        }
    }
}

async fn run(
    check: TcpHealthCheck,
    servers: Vec<TcpServer>,
    transport: Arc<TcpTransport>,
    state: std::sync::Weak<HealthState>,
) {
    loop {
        let mut all_up = true;
        for (index, server) in servers.iter().enumerate() {
            let healthy = probe(&check, server, &transport).await;
            let Some(state) = state.upgrade() else { return };
            let was = state.up[index].swap(healthy, Ordering::Relaxed);
            if was != healthy {
                let status = if healthy { "UP" } else { "DOWN" };
                tracing::info!(server = %server.address, status, "TCP health check");
            }
            all_up &= healthy;
        }
        let pause = if all_up {
            check.interval
        } else {
            check.unhealthy_interval
        };
        tokio::time::sleep(pause).await;
    }
}

async fn probe(check: &TcpHealthCheck, server: &TcpServer, transport: &TcpTransport) -> bool {
    let address = match check.port {
        Some(port) => match server.address.rsplit_once(':') {
            Some((host, _)) => format!("{host}:{port}"),
            None => return false,
        },
        None => server.address.clone(),
    };
    let attempt = async {
        let mut stream = transport.dial_own(&address, server.tls).await.ok()?;
        if let Some(send) = &check.send {
            stream.write_all(send.as_bytes()).await.ok()?;
        }
        if let Some(expect) = &check.expect {
            let mut answer = vec![0u8; expect.len()];
            stream.read_exact(&mut answer).await.ok()?;
            if answer != expect.as_bytes() {
                return None;
            }
        }
        let _ = stream.shutdown().await;
        Some(())
    };
    matches!(
        tokio::time::timeout(check.timeout, attempt).await,
        Ok(Some(()))
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::transport::TcpTransportDefaults;

    async fn answering(reply: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 16];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
            }
        });
        addr.to_string()
    }

    #[tokio::test]
    async fn send_and_expect() {
        let transport = TcpTransport::from_defaults(&TcpTransportDefaults {
            tls: None,
            ..Default::default()
        });
        let check = TcpHealthCheck::from_config(
            &serde_json::json!({"send": "PING", "expect": "PONG", "timeout": "1s"}),
        )
        .unwrap();
        let server = |address: String| TcpServer {
            address,
            tls: false,
        };
        assert!(probe(&check, &server(answering(b"PONG").await), &transport).await);
        assert!(!probe(&check, &server(answering(b"NOPE").await), &transport).await);
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!probe(&check, &server(closed.to_string()), &transport).await);
        assert!(TcpHealthCheck::from_config(&serde_json::json!({"unknown": 1})).is_err());
    }
}
