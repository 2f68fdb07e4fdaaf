use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;

use crate::error::TestkitError;

/// An HTTP/1.1 server that answers every request with one settable reply (status, body, delay),
/// over plain TCP or TLS, and keeps the request heads it read: the endpoint that configuration
/// pollers (`providers.http`) read from. Each answer closes its connection.
#[derive(Debug)]
pub struct ConfigServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    accept_loop: AbortHandle,
}

#[derive(Debug)]
struct State {
    reply: Mutex<Reply>,
    heads: Mutex<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

impl ConfigServer {
    /// Starts on a free loopback port, answering `200` with `body`; over TLS with `tls`.
    pub async fn start(body: &str, tls: Option<TlsAcceptor>) -> crate::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TestkitError::io("binding the configuration server", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io("address of the configuration server", e))?;
        let state = Arc::new(State {
            reply: Mutex::new(Reply {
                status: 200,
                body: body.into(),
                delay: Duration::ZERO,
            }),
            heads: Mutex::default(),
        });
        let served = Arc::clone(&state);
        let is_tls = tls.is_some();
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&served);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                state.answer(stream).await;
                            }
                        }
                        None => state.answer(stream).await,
                    }
                });
            }
        })
        .abort_handle();
        Ok(ConfigServer {
            addr,
            tls: is_tls,
            state,
            accept_loop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// What the next requests get.
    pub fn set(&self, status: u16, body: &str) {
        let mut reply = lock(&self.state.reply);
        reply.status = status;
        reply.body = body.into();
    }

    /// How long each answer waits after reading the request head.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state.reply).delay = delay;
    }

    /// The request heads read so far, oldest first.
    pub fn heads(&self) -> Vec<String> {
        lock(&self.state.heads).clone()
    }
}

impl Drop for ConfigServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl State {
    async fn answer(&self, mut stream: impl AsyncRead + AsyncWrite + Unpin) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        lock(&self.heads).push(String::from_utf8_lossy(&head).into_owned());
        let reply = lock(&self.reply).clone();
        tokio::time::sleep(reply.delay).await;
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/yaml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            reply.status,
            reply.body.len(),
            reply.body
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
