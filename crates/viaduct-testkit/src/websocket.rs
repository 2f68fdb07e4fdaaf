use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use crate::error::TestkitError;

/// Headers of each accepted upgrade request.
type Handshakes = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A WebSocket backend that echoes every text and binary message, and keeps the headers of each
/// upgrade request it accepted (to check what the proxy forwarded).
#[derive(Debug)]
pub struct WsEchoBackend {
    addr: SocketAddr,
    handshakes: Handshakes,
    accept_loop: AbortHandle,
}

impl WsEchoBackend {
    pub async fn start() -> crate::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TestkitError::io("binding the WebSocket echo backend", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io("address of the WebSocket echo backend", e))?;
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let accept_loop =
            tokio::spawn(accept_loop(listener, Arc::clone(&handshakes))).abort_handle();
        Ok(Self {
            addr,
            handshakes,
            accept_loop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: proxies route WebSocket to plain HTTP server URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Headers of every accepted upgrade request, in arrival order.
    pub fn handshakes(&self) -> Vec<Vec<(String, String)>> {
        self.handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for WsEchoBackend {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Opens `ws_url` (e.g. `ws://127.0.0.1:PORT/path`), sends each message as text and returns the
/// replies in order. Bounded by `timeout` as a whole.
pub async fn ws_echo_roundtrip(
    ws_url: &str,
    messages: &[&str],
    timeout: Duration,
) -> crate::Result<Vec<String>> {
    let failure = |reason: String| TestkitError::WebSocket {
        url: ws_url.to_string(),
        reason,
    };
    let authority = ws_url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| failure("only ws://HOST:PORT/… URLs are supported".into()))?
        .to_string();
    let exchange = async {
        let stream = TcpStream::connect(&authority)
            .await
            .map_err(|e| failure(format!("connecting: {e}")))?;
        let (mut socket, _) = tokio_tungstenite::client_async(ws_url, stream)
            .await
            .map_err(|e| failure(format!("handshake: {e}")))?;
        let mut replies = Vec::with_capacity(messages.len());
        for message in messages {
            socket
                .send(Message::text(*message))
                .await
                .map_err(|e| failure(format!("sending: {e}")))?;
            let reply = socket
                .next()
                .await
                .ok_or_else(|| failure("closed before replying".into()))?
                .map_err(|e| failure(format!("receiving: {e}")))?;
            let text = reply
                .to_text()
                .map_err(|e| failure(format!("non-text reply: {e}")))?;
            replies.push(text.to_string());
        }
        // A failed close handshake does not change what was exchanged.
        let _ = socket.close(None).await;
        Ok(replies)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| failure(format!("no complete exchange within {timeout:?}")))?
}

async fn accept_loop(listener: TcpListener, handshakes: Handshakes) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handshakes = Arc::clone(&handshakes);
        connections.spawn(async move {
            // The error type is tungstenite's, and this closure never returns it.
            #[allow(clippy::result_large_err)]
            let record = |request: &Request, response: Response| {
                let headers = request
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                handshakes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(headers);
                Ok(response)
            };
            let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                return;
            };
            while let Some(Ok(message)) = socket.next().await {
                let echo = match message {
                    Message::Text(_) | Message::Binary(_) => message,
                    Message::Close(_) => break,
                    _ => continue,
                };
                if socket.send(echo).await.is_err() {
                    break;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}
