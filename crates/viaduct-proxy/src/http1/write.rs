//! Writing a response (RFC 9112 §4, §6): the head, then the body framed by its length or in
//! chunks, flushed whenever the body has nothing ready so that streams reach the client as
//! they are produced.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Response, StatusCode, Version};
use http_body::Body as _;
use tokio::net::TcpStream;
use viaduct_upstream::Body;

use super::io::{client_closed, write_all};

/// Data frames up to this size are copied into the write buffer (one system call for head
/// and body); larger ones are written from where they are.
const COPY_LIMIT: usize = 16 * 1024;
/// The write buffer is flushed once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

/// The capacity a lent write buffer starts with: a typical head fits without regrowing.
const LENT_CAPACITY: usize = 1024;

thread_local! {
    /// A write buffer lent to one response at a time on this thread, so that most responses
    /// allocate none. A response being written while another holds it gets a new one.
    static SPARE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A write buffer for one response; [`give_back`] it when the response is written.
pub(crate) fn lend_buffer() -> Vec<u8> {
    let buf = SPARE_BUFFER.take();
    if buf.capacity() == 0 {
        Vec::with_capacity(LENT_CAPACITY)
    } else {
        buf
    }
}

/// Keeps `buf` for the next response on this thread, unless a large body grew it.
pub(crate) fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() <= FLUSH_AT + COPY_LIMIT {
        buf.clear();
        SPARE_BUFFER.set(buf);
    }
}

/// What the request decided about its response.
pub(crate) struct Exchange {
    pub version: Version,
    pub head_request: bool,
    pub keep_alive: bool,
}

/// How the body was sent; `Ok(false)` means the connection must close (the body failed, or
/// it was delimited by the close).
pub(crate) async fn write_response(
    stream: &TcpStream,
    wbuf: &mut Vec<u8>,
    response: Response<Body>,
    exchange: &Exchange,
    mut watch: Option<(&mut BytesMut, usize)>,
) -> io::Result<bool> {
    let (mut parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodiless = exchange.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut keep_alive = exchange.keep_alive;
    let framing = if bodiless {
        if status == StatusCode::NO_CONTENT || status.is_informational() {
            parts.headers.remove(CONTENT_LENGTH);
        }
        parts.headers.remove(TRANSFER_ENCODING);
        Framing::None
    } else if let Some(length) = declared_length(&parts.headers) {
        Framing::Length(length)
    } else if let Some(length) = body.size_hint().exact() {
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
        Framing::Length(length)
    } else if exchange.version == Version::HTTP_11 {
        parts
            .headers
            .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Framing::Chunked
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    if !keep_alive {
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if !parts.headers.contains_key(DATE) {
        parts.headers.insert(DATE, http_date());
    }

    wbuf.clear();
    encode_head(wbuf, exchange.version, status, &parts.headers);
    if matches!(framing, Framing::None) || body.is_end_stream() {
        if matches!(framing, Framing::Chunked) {
            wbuf.extend_from_slice(b"0\r\n\r\n");
        }
        write_all(stream, &[wbuf]).await?;
        let complete = match framing {
            Framing::Length(n) => n == 0,
            _ => true,
        };
        return Ok(keep_alive && complete);
    }

    let mut remaining = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };
    let chunked = matches!(framing, Framing::Chunked);
    let mut trailers: Option<HeaderMap> = None;
    loop {
        // Whatever is buffered goes out before waiting for the body: a stream (server-sent
        // events, a long poll) must not sit in our buffer.
        let frame = match poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
            Poll::Pending => Poll::Ready(None),
        })
        .await
        {
            Some(frame) => frame,
            None => {
                if !wbuf.is_empty() {
                    write_all(stream, &[wbuf]).await?;
                    wbuf.clear();
                }
                let next = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
                match watch.as_mut() {
                    Some((buf, limit)) => tokio::select! {
                        frame = next => frame,
                        _ = client_closed(stream, buf, *limit) => return Ok(false),
                    },
                    None => next.await,
                }
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                // The body failed midway: send what we have and close, so the client sees a
                // truncated message rather than a complete one.
                tracing::debug!(error = %e, "response body failed");
                if !wbuf.is_empty() {
                    let _ = write_all(stream, &[wbuf]).await;
                }
                return Ok(false);
            }
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        let data = match &mut remaining {
            Some(left) => {
                // More than declared would corrupt the next response: cut, then close.
                let allowed = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                *left -= allowed as u64;
                if allowed < data.len() {
                    keep_alive = false;
                }
                data.slice(..allowed)
            }
            None => data,
        };
        if chunked {
            let _ = write_hex(wbuf, data.len());
        }
        put_data(stream, wbuf, data).await?;
        if chunked {
            wbuf.extend_from_slice(b"\r\n");
        }
        if wbuf.len() >= FLUSH_AT {
            write_all(stream, &[wbuf]).await?;
            wbuf.clear();
        }
    }
    if chunked {
        wbuf.extend_from_slice(b"0\r\n");
        if let Some(trailers) = &trailers {
            encode_fields(wbuf, trailers);
        }
        wbuf.extend_from_slice(b"\r\n");
    }
    if !wbuf.is_empty() {
        write_all(stream, &[wbuf]).await?;
        wbuf.clear();
    }
    let complete = remaining.is_none_or(|left| left == 0);
    Ok(keep_alive && complete && !matches!(framing, Framing::UntilClose))
}

/// Writes a complete plain-text answer the server gives itself (a refused head).
pub(crate) async fn write_status(stream: &TcpStream, status: StatusCode) -> io::Result<()> {
    let reason = status.canonical_reason().unwrap_or("");
    let text = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{reason}",
        status.as_u16(),
        reason.len()
    );
    write_all(stream, &[text.as_bytes()]).await
}

/// `HTTP/1.1 100 Continue`, for a client that waits for it before sending its body.
pub(crate) async fn write_continue(stream: &TcpStream) -> io::Result<()> {
    write_all(stream, &[b"HTTP/1.1 100 Continue\r\n\r\n"]).await
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

async fn put_data(stream: &TcpStream, wbuf: &mut Vec<u8>, data: Bytes) -> io::Result<()> {
    if data.len() <= COPY_LIMIT {
        wbuf.extend_from_slice(&data);
        return Ok(());
    }
    write_all(stream, &[wbuf, &data]).await?;
    wbuf.clear();
    Ok(())
}

pub(crate) fn encode_head(
    wbuf: &mut Vec<u8>,
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
) {
    wbuf.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    wbuf.extend_from_slice(status.as_str().as_bytes());
    wbuf.push(b' ');
    wbuf.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    wbuf.extend_from_slice(b"\r\n");
    encode_fields(wbuf, headers);
    wbuf.extend_from_slice(b"\r\n");
}

fn encode_fields(wbuf: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        wbuf.extend_from_slice(name.as_str().as_bytes());
        wbuf.extend_from_slice(b": ");
        wbuf.extend_from_slice(value.as_bytes());
        wbuf.extend_from_slice(b"\r\n");
    }
}

fn write_hex(wbuf: &mut Vec<u8>, n: usize) -> std::fmt::Result {
    use std::fmt::Write as _;
    let mut line = HexLine(wbuf);
    write!(line, "{n:x}\r\n")
}

struct HexLine<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexLine<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// The `Date` header, formatted once per second per thread.
fn http_date() -> HeaderValue {
    thread_local! {
        static CACHE: RefCell<(u64, HeaderValue)> =
            const { RefCell::new((0, HeaderValue::from_static(""))) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            let text = httpdate::fmt_http_date(now);
            if let Ok(value) = HeaderValue::from_str(&text) {
                *cache = (second, value);
            }
        }
        cache.1.clone()
    })
}
