//! Socket helpers of the HTTP/1.1 server: reads into the connection buffer, vectored writes
//! through a shared `TcpStream`, and the stream handed on after an upgrade or an h2c preface.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use viaduct_upstream::readiness::read_into;

/// How much room a read makes when the buffer is nearly full: heads are small, and bodies are
/// handed on as they arrive.
pub(crate) const READ_CHUNK: usize = 16 * 1024;
const MIN_SPARE: usize = 2 * 1024;

/// Reads what the socket has into `buf`; `Ok(0)` is the end of the stream.
pub(crate) fn poll_fill(
    stream: &TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < MIN_SPARE {
        buf.reserve(READ_CHUNK);
    }
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match read_into(stream, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// Resolves when the client closes its side (or the socket fails), while the server waits
/// for the answer to give it: the exchange is then abandoned, which closes the backend
/// connection and releases what the request held. Bytes that arrive meanwhile (a pipelined
/// request) are kept in `buf`, up to `limit`; past it the watch stops reading.
pub(crate) async fn client_closed(stream: &TcpStream, buf: &mut BytesMut, limit: usize) {
    loop {
        if buf.len() >= limit {
            return std::future::pending().await;
        }
        if std::future::poll_fn(|cx| stream.poll_read_ready(cx))
            .await
            .is_err()
        {
            return;
        }
        if buf.capacity() - buf.len() < MIN_SPARE {
            buf.reserve(4096);
        }
        match read_into(stream, buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Writes every byte of `parts`, in order, with as few system calls as the socket allows.
pub(crate) async fn write_all(stream: &TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < parts.len() {
        if parts[index].len() == offset {
            index += 1;
            offset = 0;
            continue;
        }
        let mut slices = [IoSlice::new(&[]); 4];
        let mut n = 0;
        for (i, part) in parts[index..].iter().take(4).enumerate() {
            slices[i] = IoSlice::new(if i == 0 { &part[offset..] } else { part });
            n = i + 1;
        }
        // Written at once: a socket is nearly always writable, and waiting first would cost a
        // readiness check on every response.
        let written = match stream.try_write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::future::poll_fn(|cx| stream.poll_write_ready(cx)).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut left = written;
        while left > 0 && index < parts.len() {
            let available = parts[index].len() - offset;
            if left >= available {
                left -= available;
                index += 1;
                offset = 0;
            } else {
                offset += left;
                left = 0;
            }
        }
    }
    Ok(())
}

/// The client connection after the HTTP/1.1 exchange ended (an upgrade, or an h2c preface):
/// the bytes already read come first.
pub(crate) struct HandedOn {
    prefix: BytesMut,
    stream: TcpStream,
}

impl HandedOn {
    /// `None` when something else still holds the stream (a request body that outlived its
    /// exchange): the connection cannot be handed on then.
    pub(crate) fn new(prefix: BytesMut, stream: Arc<TcpStream>) -> Option<Self> {
        Arc::try_unwrap(stream)
            .ok()
            .map(|stream| HandedOn { prefix, stream })
    }
}

impl AsyncRead for HandedOn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HandedOn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
