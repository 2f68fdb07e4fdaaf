//! Writing a request: the head in one buffer, then the body frame by frame.
//!
//! The head and the first body chunk go out in one write when the chunk is already there,
//! which is the whole body of most small requests. The rest of the body streams: nothing
//! here holds more than one frame of it.

use std::future::poll_fn;
use std::io::Write as _;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::request::Parts;
use http_body::Body as _;
use tokio::io::AsyncWriteExt;

use super::pool::Conn;
use super::H1Error;
use crate::body::{Body, BoxError};

/// Body chunks up to this size are copied next to their framing so that they leave in the
/// same write; larger ones are written from their own buffer.
const COALESCE_LIMIT: usize = 16 * 1024;

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body. A `Content-Length: 0` the caller set is kept (some backends want it on POST).
    Empty,
    Length(u64),
    Chunked,
}

impl RequestFraming {
    /// Decided from the body, which knows better than any framing header the caller left.
    pub(crate) fn of(body: &Body) -> RequestFraming {
        if body.is_end_stream() {
            return RequestFraming::Empty;
        }
        match body.size_hint().exact() {
            Some(0) => RequestFraming::Empty,
            Some(n) => RequestFraming::Length(n),
            None => RequestFraming::Chunked,
        }
    }
}

/// Writes the request. `body_polled` turns true just before the body is first polled: from
/// then on the request cannot be sent again.
pub(crate) async fn write_request(
    conn: &mut Conn,
    parts: &Parts,
    body: &mut Body,
    body_polled: &mut bool,
) -> Result<(), H1Error> {
    let framing = RequestFraming::of(body);
    conn.write_buf.clear();
    encode_head(&mut conn.write_buf, parts, framing);
    if framing == RequestFraming::Empty {
        return write_all(conn, &[]).await;
    }

    *body_polled = true;
    let mut encoder = BodyEncoder { framing, sent: 0 };
    // Take the first frame only if it is ready: a slow client must not delay the head.
    let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await;
    let mut next = match first {
        Poll::Ready(frame) => frame,
        Poll::Pending => {
            write_all(conn, &[]).await?;
            conn.write_buf.clear();
            poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
        }
    };
    loop {
        match next {
            None => {
                encoder.encode_end(&mut conn.write_buf, None)?;
                return write_all(conn, &[]).await;
            }
            Some(Err(err)) => return Err(H1Error::ClientBody(err)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let large = encoder.encode_data(&mut conn.write_buf, data)?;
                    write_all(conn, large.as_deref().unwrap_or_default()).await?;
                    conn.write_buf.clear();
                    if large.is_some() && framing == RequestFraming::Chunked {
                        conn.write_buf.extend_from_slice(b"\r\n");
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        encoder.encode_end(&mut conn.write_buf, Some(&trailers))?;
                        return write_all(conn, &[]).await;
                    }
                }
            },
        }
        next = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await;
    }
}

/// Serialises the request head: origin-form target, the headers as given except the
/// framing ones, which follow `framing`.
pub(crate) fn encode_head(buf: &mut Vec<u8>, parts: &Parts, framing: RequestFraming) {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let target = if target.is_empty() { "/" } else { target };
    buf.reserve(64 + target.len() + 48 * parts.headers.len());
    buf.extend_from_slice(parts.method.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(target.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            had_length = true;
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        push_field(buf, name.as_str().as_bytes(), value.as_bytes());
    }
    match framing {
        RequestFraming::Empty if had_length => buf.extend_from_slice(b"content-length: 0\r\n"),
        RequestFraming::Empty => {}
        RequestFraming::Length(n) => {
            let _ = write!(buf, "content-length: {n}\r\n");
        }
        RequestFraming::Chunked => buf.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    buf.extend_from_slice(b"\r\n");
}

/// Tracks what has been sent of the body, to frame it and to check it against its length.
struct BodyEncoder {
    framing: RequestFraming,
    sent: u64,
}

impl BodyEncoder {
    /// Appends `data` with its framing to `buf`, or only the framing when `data` is large:
    /// the large data is returned, to be written after `buf`.
    fn encode_data(&mut self, buf: &mut Vec<u8>, data: Bytes) -> Result<Option<Bytes>, H1Error> {
        if data.is_empty() {
            // An empty chunk would end a chunked body.
            return Ok(None);
        }
        self.sent += data.len() as u64;
        match self.framing {
            RequestFraming::Length(length) if self.sent > length => {
                return Err(H1Error::ClientBody(BoxError::from(format!(
                    "request body longer than its length of {length} bytes"
                ))))
            }
            RequestFraming::Chunked => {
                let _ = write!(buf, "{:x}\r\n", data.len());
            }
            _ => {}
        }
        if data.len() > COALESCE_LIMIT {
            return Ok(Some(data));
        }
        buf.extend_from_slice(&data);
        if self.framing == RequestFraming::Chunked {
            buf.extend_from_slice(b"\r\n");
        }
        Ok(None)
    }

    /// Appends the end of the body: the last chunk and trailers when chunked.
    fn encode_end(&self, buf: &mut Vec<u8>, trailers: Option<&HeaderMap>) -> Result<(), H1Error> {
        match self.framing {
            RequestFraming::Length(length) if self.sent != length => {
                Err(H1Error::ClientBody(BoxError::from(format!(
                    "request body ended after {} of {length} bytes",
                    self.sent
                ))))
            }
            RequestFraming::Chunked => {
                buf.extend_from_slice(b"0\r\n");
                for (name, value) in trailers.into_iter().flatten() {
                    push_field(buf, name.as_str().as_bytes(), value.as_bytes());
                }
                buf.extend_from_slice(b"\r\n");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn push_field(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Writes the connection's write buffer, then `more`.
async fn write_all(conn: &mut Conn, more: &[u8]) -> Result<(), H1Error> {
    if !conn.write_buf.is_empty() {
        conn.stream
            .write_all(&conn.write_buf)
            .await
            .map_err(H1Error::Write)?;
    }
    if !more.is_empty() {
        conn.stream.write_all(more).await.map_err(H1Error::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Method, Request};

    fn head_of(request: Request<()>, framing: RequestFraming) -> String {
        let (parts, ()) = request.into_parts();
        let mut buf = Vec::new();
        encode_head(&mut buf, &parts, framing);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn serialises_origin_form_and_headers_in_order() {
        let request = Request::builder()
            .method(Method::GET)
            .uri("http://10.0.0.1:81/a/b?x=1")
            .header("host", "example.com")
            .header("x-one", "1")
            .header("x-one", "2")
            .body(())
            .unwrap();
        assert_eq!(
            head_of(request, RequestFraming::Empty),
            "GET /a/b?x=1 HTTP/1.1\r\nhost: example.com\r\nx-one: 1\r\nx-one: 2\r\n\r\n"
        );
    }

    #[test]
    fn framing_headers_follow_the_body() {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("http://b/")
            .header("content-length", "99")
            .header("transfer-encoding", "gzip, chunked")
            .body(())
            .unwrap();
        assert_eq!(
            head_of(request.clone(), RequestFraming::Length(5)),
            "POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(
            head_of(request.clone(), RequestFraming::Chunked),
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            head_of(request.clone(), RequestFraming::Empty),
            "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
        request.headers_mut().clear();
        request
            .headers_mut()
            .insert("x", HeaderValue::from_static("y"));
        assert_eq!(
            head_of(request, RequestFraming::Empty),
            "POST / HTTP/1.1\r\nx: y\r\n\r\n"
        );
    }

    #[test]
    fn framing_of_bodies() {
        assert_eq!(RequestFraming::of(&Body::Empty), RequestFraming::Empty);
        assert_eq!(
            RequestFraming::of(&crate::full_body("hello")),
            RequestFraming::Length(5)
        );
    }

    #[test]
    fn chunked_encoding_of_data_and_end() {
        let mut encoder = BodyEncoder {
            framing: RequestFraming::Chunked,
            sent: 0,
        };
        let mut buf = Vec::new();
        assert!(encoder
            .encode_data(&mut buf, Bytes::from_static(b"hello"))
            .unwrap()
            .is_none());
        assert!(encoder
            .encode_data(&mut buf, Bytes::new())
            .unwrap()
            .is_none());
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", HeaderValue::from_static("1"));
        encoder.encode_end(&mut buf, Some(&trailers)).unwrap();
        assert_eq!(buf, b"5\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n");
    }

    #[test]
    fn length_mismatch_is_the_clients_fault() {
        let mut encoder = BodyEncoder {
            framing: RequestFraming::Length(3),
            sent: 0,
        };
        let mut buf = Vec::new();
        assert!(encoder
            .encode_data(&mut buf, Bytes::from_static(b"abcd"))
            .is_err());
        let short = BodyEncoder {
            framing: RequestFraming::Length(3),
            sent: 1,
        };
        assert!(short.encode_end(&mut buf, None).is_err());
    }
}
