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
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Frame, SizeHint};

use super::pool::{Conn, HostPool};
use super::response::ResponseFraming;
use crate::body::BoxError;

/// A chunk-size line longer than this (extensions included) is refused.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The trailer section of a chunked body, at most.
const MAX_TRAILERS: usize = 16 * 1024;
const MAX_TRAILER_FIELDS: usize = 64;
/// Reads ask for at least this much room, so that a large body takes few system calls.
/// How much room to make for a read of a body that does not fit the buffer: large enough that
/// a streamed body costs few system calls (64 KiB halved the proxy's CPU per GiB compared with
/// 16 KiB), made only when less than [`MIN_SPARE`] is left, so small bodies never grow it.
const READ_CHUNK: usize = 64 * 1024;
const MIN_SPARE: usize = 4 * 1024;

/// A response body read from a pooled HTTP/1.1 connection.
pub struct UpstreamBody {
    /// `None` once the body is complete or failed.
    conn: Option<Conn>,
    host: Arc<HostPool>,
    decoder: Decoder,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

impl UpstreamBody {
    /// `framing` must not be [`ResponseFraming::Empty`]: empty bodies need no connection.
    pub(crate) fn new(
        conn: Conn,
        host: Arc<HostPool>,
        framing: ResponseFraming,
        keep_alive: bool,
    ) -> UpstreamBody {
        let decoder = match framing {
            ResponseFraming::Empty => Decoder::Length(0),
            ResponseFraming::Length(n) => Decoder::Length(n),
            ResponseFraming::Chunked => Decoder::ChunkSize,
            ResponseFraming::UntilClose => Decoder::UntilClose,
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
        self.decoder = Decoder::Done;
        if let Some(conn) = self.conn.take() {
            // Bytes past the response mean the backend does not frame its messages as we
            // think: never hand them to the next request.
            if self.keep_alive && conn.read_buf.is_empty() {
                self.host.release(conn);
            }
        }
    }

    fn fail(&mut self, err: UpstreamBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.decoder = Decoder::Done;
        self.conn = None;
        Poll::Ready(Some(Err(BoxError::from(err))))
    }

    fn authority(&self) -> String {
        self.host.authority.to_string()
    }

    /// One step of the decoder. `Ready(None)` from a step means "state changed, go on".
    fn step(&mut self, cx: &mut Context<'_>) -> Poll<Option<StepResult>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Some(StepResult::End));
        };
        let buf = &mut conn.read_buf;
        match self.decoder {
            Decoder::Done => Poll::Ready(Some(StepResult::End)),
            Decoder::Length(0) => Poll::Ready(Some(StepResult::Finish(None))),
            Decoder::Length(remaining) | Decoder::ChunkData(remaining) => {
                if buf.is_empty() {
                    return match ready!(poll_fill(conn, cx)) {
                        Ok(0) => Poll::Ready(Some(StepResult::Closed)),
                        Ok(_) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(StepResult::ReadError(e))),
                    };
                }
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let data = buf.split_to(take).freeze();
                let left = remaining - take as u64;
                self.decoder = match self.decoder {
                    Decoder::Length(_) => Decoder::Length(left),
                    _ if left == 0 => Decoder::ChunkEnd,
                    _ => Decoder::ChunkData(left),
                };
                Poll::Ready(Some(StepResult::Data(data)))
            }
            Decoder::UntilClose => {
                if buf.is_empty() {
                    return match ready!(poll_fill(conn, cx)) {
                        Ok(0) => Poll::Ready(Some(StepResult::Finish(None))),
                        Ok(_) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(StepResult::ReadError(e))),
                    };
                }
                Poll::Ready(Some(StepResult::Data(buf.split().freeze())))
            }
            Decoder::ChunkSize => {
                // An empty size line would parse as a zero chunk: require a digit.
                if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                    return Poll::Ready(Some(StepResult::Malformed("invalid chunk size")));
                }
                match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((line, size))) => {
                        let _ = buf.split_to(line);
                        self.decoder = if size == 0 {
                            Decoder::Trailers
                        } else {
                            Decoder::ChunkData(size)
                        };
                        Poll::Ready(None)
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                        Poll::Ready(Some(StepResult::Malformed("chunk size line too long")))
                    }
                    Ok(httparse::Status::Partial) => fill_or_end(conn, cx),
                    Err(_) => Poll::Ready(Some(StepResult::Malformed("invalid chunk size"))),
                }
            }
            Decoder::ChunkEnd => {
                if buf.len() < 2 {
                    return fill_or_end(conn, cx);
                }
                if &buf[..2] != b"\r\n" {
                    return Poll::Ready(Some(StepResult::Malformed(
                        "chunk data not followed by CRLF",
                    )));
                }
                let _ = buf.split_to(2);
                self.decoder = Decoder::ChunkSize;
                Poll::Ready(None)
            }
            Decoder::Trailers => {
                let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
                match httparse::parse_headers(buf, &mut fields) {
                    Ok(httparse::Status::Complete((len, fields))) => {
                        let trailers = (!fields.is_empty()).then(|| trailer_map(fields));
                        let _ = buf.split_to(len);
                        Poll::Ready(Some(StepResult::Finish(trailers)))
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => {
                        Poll::Ready(Some(StepResult::Malformed("trailer section too large")))
                    }
                    Ok(httparse::Status::Partial) => fill_or_end(conn, cx),
                    Err(_) => Poll::Ready(Some(StepResult::Malformed("invalid trailer section"))),
                }
            }
        }
    }
}

enum StepResult {
    Data(Bytes),
    /// The body is complete, with its trailers if it had any.
    Finish(Option<HeaderMap>),
    /// Already finished (or failed) before.
    End,
    /// The backend closed the connection before the body's end.
    Closed,
    ReadError(io::Error),
    Malformed(&'static str),
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
            let Some(result) = ready!(this.step(cx)) else {
                continue;
            };
            return match result {
                StepResult::Data(data) => {
                    if this.decoder == Decoder::Length(0) {
                        // Hand the connection back now rather than on the next poll.
                        this.finish();
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                StepResult::Finish(trailers) => {
                    this.finish();
                    Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
                }
                StepResult::End => Poll::Ready(None),
                StepResult::Closed => {
                    let authority = this.authority();
                    let err = match this.decoder {
                        Decoder::Length(remaining) => UpstreamBodyError::Truncated {
                            authority,
                            remaining,
                        },
                        _ => UpstreamBodyError::ChunkedTruncated { authority },
                    };
                    this.fail(err)
                }
                StepResult::ReadError(source) => {
                    let authority = this.authority();
                    this.fail(UpstreamBodyError::Read { authority, source })
                }
                StepResult::Malformed(reason) => {
                    let authority = this.authority();
                    this.fail(UpstreamBodyError::Chunked { authority, reason })
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder == Decoder::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
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

/// Reads more of the body; inside a chunked body the connection must not end.
fn fill_or_end(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<Option<StepResult>> {
    match ready!(poll_fill(conn, cx)) {
        Ok(0) => Poll::Ready(Some(StepResult::Closed)),
        Ok(_) => Poll::Ready(None),
        Err(e) => Poll::Ready(Some(StepResult::ReadError(e))),
    }
}

/// Reads what the socket has into the connection's buffer. `Ok(0)` is the end of the stream.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    if conn.read_buf.capacity() - conn.read_buf.len() < MIN_SPARE {
        conn.read_buf.reserve(READ_CHUNK);
    }
    loop {
        ready!(conn.stream.poll_read_ready(cx))?;
        match conn.stream.try_read_buf(&mut conn.read_buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// Trailer fields that are not valid header fields are dropped, not fatal: the body itself
/// arrived whole.
fn trailer_map(fields: &[httparse::Header<'_>]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(fields.len());
    for field in fields {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(field.name.as_bytes()),
            HeaderValue::from_bytes(field.value),
        ) {
            map.append(name, value);
        }
    }
    map
}
