//! The response body of the inline client, decoded frame by frame as the caller polls it.
//!
//! The body owns the connection while it is read. Once the last byte is decoded, a
//! keep-alive connection goes back to its pool; a body dropped before that closes the
//! connection, since the unread rest of the response would corrupt the next exchange.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::decode::{BodyDecoder, Decoded};
use super::pool::{Conn, HostPool};
use super::response::ResponseFraming;
use crate::body::BoxError;

/// How much room to make for a read of a body that does not fit the buffer: large enough that
/// a streamed body costs few system calls (64 KiB halved the proxy's CPU per GiB compared with
/// 16 KiB), made only when less than [`MIN_SPARE`] is left, so small bodies never grow it.
const READ_CHUNK: usize = 64 * 1024;
const MIN_SPARE: usize = 4 * 1024;

/// A response body read from a pooled HTTP/1.1 connection.
pub struct UpstreamBody {
    /// `None` once the body is complete or failed.
    conn: Option<Box<Conn>>,
    host: Arc<HostPool>,
    decoder: BodyDecoder,
    keep_alive: bool,
}

/// Errors while reading a response body; the backend is to blame for all of them.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    #[error("reading the response body from {authority}: {source}")]
    Read {
        authority: String,
        source: io::Error,
    },
    #[error(
        "{authority} closed the connection {remaining} bytes before the end of the response body"
    )]
    Truncated { authority: String, remaining: u64 },
    #[error("{authority} closed the connection inside a chunked response body")]
    ChunkedTruncated { authority: String },
    #[error("malformed chunked response body from {authority}: {reason}")]
    Chunked {
        authority: String,
        reason: &'static str,
    },
}

impl UpstreamBody {
    /// `framing` must not be [`ResponseFraming::Empty`]: empty bodies need no connection.
    pub(crate) fn new(
        conn: Box<Conn>,
        host: Arc<HostPool>,
        framing: ResponseFraming,
        keep_alive: bool,
    ) -> UpstreamBody {
        let decoder = match framing {
            ResponseFraming::Empty => BodyDecoder::length(0),
            ResponseFraming::Length(n) => BodyDecoder::length(n),
            ResponseFraming::Chunked => BodyDecoder::chunked(),
            ResponseFraming::UntilClose => BodyDecoder::until_close(),
        };
        UpstreamBody {
            conn: Some(conn),
            host,
            decoder,
            keep_alive,
        }
    }

    /// Ends the body; the connection goes back to the pool if it can carry another exchange.
    fn finish(&mut self) {
        self.decoder.set_done();
        if let Some(conn) = self.conn.take() {
            // Bytes past the response mean the backend does not frame its messages as we
            // think: never hand them to the next request.
            if self.keep_alive && conn.read_buf.is_empty() {
                self.host.release(conn);
            }
        }
    }

    fn fail(&mut self, err: UpstreamBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.decoder.set_done();
        self.conn = None;
        Poll::Ready(Some(Err(BoxError::from(err))))
    }

    fn authority(&self) -> String {
        self.host.authority.to_string()
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.read_buf) {
                Decoded::Data(data) => {
                    if this.decoder.is_length_complete() {
                        // Hand the connection back now rather than on the next poll.
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoded::Finished(trailers) => {
                    this.finish();
                    return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                }
                Decoded::Malformed(reason) => {
                    let authority = this.authority();
                    return this.fail(UpstreamBodyError::Chunked { authority, reason });
                }
                Decoded::NeedMore => match ready!(poll_fill(conn, cx)) {
                    Ok(0) if this.decoder.ends_at_eof() => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(0) => {
                        let authority = this.authority();
                        let err = if this.decoder.is_length() {
                            UpstreamBodyError::Truncated {
                                authority,
                                remaining: this.decoder.length_remaining(),
                            }
                        } else {
                            UpstreamBodyError::ChunkedTruncated { authority }
                        };
                        return this.fail(err);
                    }
                    Ok(_) => {}
                    Err(source) => {
                        let authority = this.authority();
                        return this.fail(UpstreamBodyError::Read { authority, source });
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining_exact() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("host", &self.host.authority)
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

/// Reads what the socket has into the connection's buffer. `Ok(0)` is the end of the stream.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    if conn.read_buf.capacity() - conn.read_buf.len() < MIN_SPARE {
        conn.read_buf.reserve(READ_CHUNK);
    }
    loop {
        ready!(conn.stream.poll_read_ready(cx))?;
        match crate::readiness::read_into(&conn.stream, &mut conn.read_buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}
