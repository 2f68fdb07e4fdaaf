use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::TestkitError;
use crate::framing::{decode_chunked, find_header, header_pairs, Chunked};

/// A TCP connection that sends exactly the bytes it is given and parses responses strictly:
/// for malformed-request probes that no well-behaved client library would send.
#[derive(Debug)]
pub struct RawConnection {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read but not yet consumed by a parsed response.
    pending: Vec<u8>,
    eof: bool,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawConnection {
    pub async fn connect(addr: SocketAddr) -> crate::Result<Self> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| {
                TestkitError::io(
                    format!("connecting to {addr}"),
                    std::io::ErrorKind::TimedOut.into(),
                )
            })?
            .map_err(|e| TestkitError::io(format!("connecting to {addr}"), e))?;
        Ok(Self {
            stream,
            peer: addr,
            pending: Vec::new(),
            eof: false,
        })
    }

    /// Connects, sends `bytes`, and reads one response.
    pub async fn exchange(
        addr: SocketAddr,
        bytes: &[u8],
        timeout: Duration,
    ) -> crate::Result<RawResponse> {
        let mut conn = Self::connect(addr).await?;
        conn.send(bytes).await?;
        conn.read_response(timeout).await
    }

    pub async fn send(&mut self, bytes: &[u8]) -> crate::Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| TestkitError::io(format!("writing to {}", self.peer), e))
    }

    /// Reads one complete response (status line, headers, body framed by its headers).
    pub async fn read_response(&mut self, timeout: Duration) -> crate::Result<RawResponse> {
        let peer = self.peer;
        tokio::time::timeout(timeout, self.read_response_inner())
            .await
            .map_err(|_| TestkitError::Timeout {
                what: format!("a response from {peer}"),
                timeout,
                detail: format!(
                    " (received so far: {:?})",
                    String::from_utf8_lossy(&self.pending)
                ),
            })?
    }

    /// Whether the peer closes the connection (EOF or reset) within `timeout`. Bytes that arrive
    /// meanwhile are kept for a later `read_response`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let wait = async {
            while !self.eof {
                if self.fill().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Bytes received but not consumed by a parsed response.
    pub fn unread(&self) -> &[u8] {
        &self.pending
    }

    async fn read_response_inner(&mut self) -> crate::Result<RawResponse> {
        let (status, reason, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.pending) {
                Ok(httparse::Status::Complete(len)) => {
                    break (
                        parsed.code.unwrap_or(0),
                        parsed.reason.unwrap_or("").to_string(),
                        header_pairs(parsed.headers),
                        len,
                    )
                }
                Ok(httparse::Status::Partial) => self.fill_or_fail("the response head").await?,
                Err(e) => return Err(self.malformed(format!("bad response head: {e}"))),
            }
        };
        self.pending.drain(..head_len);
        let body = self.read_body(status, &headers).await?;
        Ok(RawResponse {
            status,
            reason,
            headers,
            body,
        })
    }

    async fn read_body(
        &mut self,
        status: u16,
        headers: &[(String, String)],
    ) -> crate::Result<Vec<u8>> {
        if status < 200 || status == 204 || status == 304 {
            return Ok(Vec::new());
        }
        let chunked = find_header(headers, "transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                match decode_chunked(&self.pending) {
                    Chunked::Complete { body, consumed } => {
                        self.pending.drain(..consumed);
                        return Ok(body);
                    }
                    Chunked::Incomplete => self.fill_or_fail("a chunked body").await?,
                    Chunked::Invalid(reason) => return Err(self.malformed(reason)),
                }
            }
        }
        if let Some(len) = find_header(headers, "content-length").first() {
            let len: usize = len
                .trim()
                .parse()
                .map_err(|_| self.malformed(format!("bad content-length {len:?}")))?;
            while self.pending.len() < len {
                self.fill_or_fail("a content-length body").await?;
            }
            return Ok(self.pending.drain(..len).collect());
        }
        while !self.eof {
            self.fill().await?;
        }
        Ok(std::mem::take(&mut self.pending))
    }

    async fn fill_or_fail(&mut self, what: &str) -> crate::Result<()> {
        self.fill().await?;
        if self.eof {
            return Err(self.malformed(format!("connection closed while reading {what}")));
        }
        Ok(())
    }

    /// Reads once more; a reset counts as end of stream, which is what a probe needs to know.
    async fn fill(&mut self) -> crate::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf).await {
            Ok(0) => self.eof = true,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => self.eof = true,
            Err(e) => return Err(TestkitError::io(format!("reading from {}", self.peer), e)),
        }
        Ok(())
    }

    fn malformed(&self, reason: String) -> TestkitError {
        TestkitError::MalformedResponse {
            peer: self.peer.to_string(),
            reason: format!(
                "{reason}; buffered: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name).first().copied()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
