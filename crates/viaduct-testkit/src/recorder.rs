use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use crate::error::TestkitError;
use crate::framing::{decode_chunked, find_header, header_pairs, Chunked};

/// A TCP backend that keeps every byte forwarded to it, splits the bytes into requests with strict
/// HTTP/1 framing, and answers each request with a fixed `200 recorded`. Smuggling checks read
/// [`RawRecorder::requests`] and [`RawRecorder::connections`] to see what really reached it.
#[derive(Debug)]
pub struct RawRecorder {
    name: String,
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    accept_loop: AbortHandle,
}

/// One request as framed by the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Index of the TCP connection it arrived on.
    pub connection: usize,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body after chunked decoding, if it was chunked.
    pub body: Vec<u8>,
    pub chunked: bool,
}

#[derive(Debug, Default)]
struct Log {
    connections: Vec<Vec<u8>>,
    requests: Vec<RecordedRequest>,
    /// Framing errors, by connection: a proxy must never forward something unparsable.
    errors: Vec<String>,
}

impl RecordedRequest {
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        find_header(&self.headers, name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }
}

impl RawRecorder {
    pub async fn start(name: &str) -> crate::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TestkitError::io(format!("binding recorder {name}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io(format!("address of recorder {name}"), e))?;
        let log = Arc::new(Mutex::new(Log::default()));
        let accept_loop =
            tokio::spawn(accept_loop(listener, name.to_string(), Arc::clone(&log))).abort_handle();
        Ok(Self {
            name: name.to_string(),
            addr,
            log,
            accept_loop,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The exact bytes received, one entry per TCP connection.
    pub fn connections(&self) -> Vec<Vec<u8>> {
        self.lock().connections.clone()
    }

    /// Framing errors seen (each names its connection).
    pub fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for RawRecorder {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept_loop(listener: TcpListener, name: String, log: Arc<Mutex<Log>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let index = {
            let mut guard = log.lock().unwrap_or_else(|p| p.into_inner());
            guard.connections.push(Vec::new());
            guard.connections.len() - 1
        };
        connections.spawn(record_connection(
            stream,
            index,
            name.clone(),
            Arc::clone(&log),
        ));
        while connections.try_join_next().is_some() {}
    }
}

async fn record_connection(
    mut stream: TcpStream,
    index: usize,
    name: String,
    log: Arc<Mutex<Log>>,
) {
    let response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Backend: {name}\r\n\r\nrecorded");
    let mut unparsed = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        unparsed.extend_from_slice(&buf[..n]);
        let mut answers = 0;
        let mut failed = false;
        {
            let mut guard = log.lock().unwrap_or_else(|p| p.into_inner());
            guard.connections[index].extend_from_slice(&buf[..n]);
            loop {
                match frame_request(&unparsed, index) {
                    Framed::Incomplete => break,
                    Framed::Request(request, consumed) => {
                        guard.requests.push(request);
                        unparsed.drain(..consumed);
                        answers += 1;
                    }
                    Framed::Invalid(reason) => {
                        guard.errors.push(format!("connection {index}: {reason}"));
                        failed = true;
                        break;
                    }
                }
            }
        }
        for _ in 0..answers {
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
        if failed {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
    }
}

enum Framed {
    Incomplete,
    Request(RecordedRequest, usize),
    Invalid(String),
}

fn frame_request(buf: &[u8], connection: usize) -> Framed {
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut slots);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Framed::Incomplete,
        Err(e) => return Framed::Invalid(format!("bad request head: {e}")),
    };
    let headers = header_pairs(parsed.headers);
    let method = parsed.method.unwrap_or("").to_string();
    let target = parsed.path.unwrap_or("").to_string();
    let transfer_encodings = find_header(&headers, "transfer-encoding");
    let lengths = find_header(&headers, "content-length");
    if !transfer_encodings.is_empty() && !lengths.is_empty() {
        return Framed::Invalid("both Transfer-Encoding and Content-Length were forwarded".into());
    }
    let rest = &buf[head_len..];
    let chunked = transfer_encodings
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    let (body, body_len) = if chunked {
        match decode_chunked(rest) {
            Chunked::Complete { body, consumed } => (body, consumed),
            Chunked::Incomplete => return Framed::Incomplete,
            Chunked::Invalid(reason) => return Framed::Invalid(reason),
        }
    } else if let Some(len) = lengths.first() {
        if lengths.iter().any(|l| l != len) {
            return Framed::Invalid(format!("conflicting Content-Length values {lengths:?}"));
        }
        let Ok(len) = len.trim().parse::<usize>() else {
            return Framed::Invalid(format!("bad Content-Length {len:?}"));
        };
        if rest.len() < len {
            return Framed::Incomplete;
        }
        (rest[..len].to_vec(), len)
    } else {
        (Vec::new(), 0)
    };
    Framed::Request(
        RecordedRequest {
            connection,
            method,
            target,
            headers,
            body,
            chunked,
        },
        head_len + body_len,
    )
}
