//! Reading a response head and deciding how its body is delimited (RFC 9112 §6.3).

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode, Version};

use super::pool::Conn;
use super::H1Error;

/// The largest response head accepted, interim responses included.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Header fields per response head. Lives on the stack during parsing (32 bytes each).
const MAX_HEADERS: usize = 128;
/// Interim (1xx) responses skipped before the final one; a backend sending more is broken.
const MAX_INTERIM: usize = 16;
const READ_CHUNK: usize = 8 * 1024;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    Empty,
    Length(u64),
    Chunked,
    /// Read until the backend closes: the connection cannot be reused.
    UntilClose,
}

/// A parsed final response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub response: Response<()>,
    pub framing: ResponseFraming,
    /// The connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// Reads the final response head, skipping interim responses. The bytes after the head
/// stay in the connection's read buffer. Fails with [`H1Error::ClosedBeforeResponse`] when
/// the connection ends before any byte of a response arrived.
pub(crate) async fn read_head(
    conn: &mut Conn,
    head_request: bool,
) -> Result<ResponseHead, H1Error> {
    let mut interim = 0;
    let mut received_any = false;
    loop {
        if !conn.read_buf.is_empty() {
            received_any = true;
            if let Some(parsed) = parse_head(&mut conn.read_buf)? {
                let status = parsed.response.status();
                if status.is_informational() {
                    if status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(H1Error::Upgrade);
                    }
                    interim += 1;
                    if interim > MAX_INTERIM {
                        return Err(H1Error::Malformed("too many interim responses"));
                    }
                    continue;
                }
                return finish_head(parsed, head_request);
            }
        }
        if conn.read_buf.capacity() - conn.read_buf.len() < READ_CHUNK / 2 {
            conn.read_buf.reserve(READ_CHUNK);
        }
        let read = loop {
            // The stream's own waker slot, not `readable()`'s queue of waiters: one task reads.
            if let Err(e) = std::future::poll_fn(|cx| conn.stream.poll_read_ready(cx)).await {
                break Err(e);
            }
            match crate::readiness::read_into(&conn.stream, &mut conn.read_buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                result => break result,
            }
        };
        match read {
            Ok(0) if received_any => return Err(H1Error::Malformed("connection closed mid-head")),
            Ok(0) => return Err(H1Error::ClosedBeforeResponse(None)),
            Ok(_) => {}
            Err(e) if !received_any && is_reset(&e) => {
                return Err(H1Error::ClosedBeforeResponse(Some(e)))
            }
            Err(e) => return Err(H1Error::Read(e)),
        }
    }
}

/// What a request's `Connection` field asks of its hop.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionAsks {
    pub upgrade: bool,
    pub close: bool,
}

impl ConnectionAsks {
    pub(crate) fn of(headers: &HeaderMap) -> ConnectionAsks {
        let mut asks = ConnectionAsks::default();
        for value in &headers.get_all(header::CONNECTION) {
            for token in value.as_bytes().split(|b| *b == b',') {
                let token = token.trim_ascii();
                asks.upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                asks.close |= token.eq_ignore_ascii_case(b"close");
            }
        }
        asks
    }
}

/// A response head as parsed, with what its connection-level fields said. Those fields
/// (`Connection` with only `close`/`keep-alive`, `Keep-Alive`, `Proxy-Connection`) describe
/// this connection alone and are left out of the headers: the proxy would strip them anyway,
/// and not inserting them is cheaper than removing them.
#[derive(Debug)]
pub(crate) struct ParsedHead {
    pub response: Response<()>,
    /// A `Connection: close` token was present.
    pub close: bool,
    /// A `Connection: keep-alive` token was present.
    pub keep_alive: bool,
    /// A `Transfer-Encoding` field was present.
    pub transfer_encoding: bool,
}

/// Header fields whose offsets are kept on the stack; a head with more takes the slow path.
const INLINE_FIELDS: usize = 32;

/// Parses one response head from the front of `buf`, consuming it. `None` asks for more
/// bytes. Header values share the head's buffer rather than being copied one by one.
fn parse_head(buf: &mut BytesMut) -> Result<Option<ParsedHead>, H1Error> {
    // Left uninitialised: zeroing 128 slots per response cost more than parsing them.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let head_len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(H1Error::Malformed("response head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(H1Error::Malformed("too many response header fields"))
        }
        Err(_) => return Err(H1Error::Malformed("invalid response head")),
    };
    if head_len > MAX_HEAD {
        return Err(H1Error::Malformed("response head too large"));
    }
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(H1Error::Malformed("invalid status code"))?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Offsets rather than slices, so that the head can be split off the buffer first. u32: a
    // head is at most MAX_HEAD bytes. Most heads fit the array on the stack.
    let base = buf.as_ptr() as usize;
    let offsets = |field: &httparse::Header<'_>| {
        (
            (field.name.as_ptr() as usize - base) as u32,
            field.name.len() as u32,
            (field.value.as_ptr() as usize - base) as u32,
            field.value.len() as u32,
        )
    };
    let count = parsed.headers.len();
    let mut inline = [(0u32, 0u32, 0u32, 0u32); INLINE_FIELDS];
    let spilled: Vec<(u32, u32, u32, u32)>;
    let fields: &[(u32, u32, u32, u32)] = if count <= INLINE_FIELDS {
        for (slot, field) in inline.iter_mut().zip(parsed.headers.iter()) {
            *slot = offsets(field);
        }
        &inline[..count]
    } else {
        spilled = parsed.headers.iter().map(offsets).collect();
        &spilled
    };
    let head: Bytes = buf.split_to(head_len).freeze();
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    let mut close = false;
    let mut keep_alive = false;
    let mut transfer_encoding = false;
    let map = response.headers_mut();
    map.reserve(count);
    for &(name, name_len, value, value_len) in fields {
        let (name, name_len) = (name as usize, name_len as usize);
        let (value, value_len) = (value as usize, value_len as usize);
        let raw_name = &head[name..name + name_len];
        match connection_field(raw_name) {
            Some(ConnectionField::Connection) => {
                let mut other = false;
                for token in head[value..value + value_len].split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    } else if !token.is_empty() {
                        other = true;
                    }
                }
                // Other tokens name fields to remove; the proxy does that from the header.
                if !other {
                    continue;
                }
            }
            Some(ConnectionField::Dropped) => continue,
            Some(ConnectionField::TransferEncoding) => transfer_encoding = true,
            None => {}
        }
        let name = HeaderName::from_bytes(raw_name)
            .map_err(|_| H1Error::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
            .map_err(|_| H1Error::Malformed("invalid header value"))?;
        map.append(name, value);
    }
    Ok(Some(ParsedHead {
        response,
        close,
        keep_alive,
        transfer_encoding,
    }))
}

enum ConnectionField {
    Connection,
    /// Hop-by-hop fields with nothing to act on: not kept.
    Dropped,
    TransferEncoding,
}

/// Recognises the fields that concern the connection, by their raw (any-case) name.
fn connection_field(name: &[u8]) -> Option<ConnectionField> {
    let field = match name.len() {
        10 if name.eq_ignore_ascii_case(b"connection") => ConnectionField::Connection,
        10 if name.eq_ignore_ascii_case(b"keep-alive") => ConnectionField::Dropped,
        16 if name.eq_ignore_ascii_case(b"proxy-connection") => ConnectionField::Dropped,
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => ConnectionField::TransferEncoding,
        _ => return None,
    };
    Some(field)
}

fn finish_head(parsed: ParsedHead, head_request: bool) -> Result<ResponseHead, H1Error> {
    let ParsedHead {
        mut response,
        close,
        keep_alive: keep_alive_token,
        transfer_encoding,
    } = parsed;
    let status = response.status();
    let mut keep_alive = match response.version() {
        Version::HTTP_10 => keep_alive_token,
        _ => !close,
    };
    let headers = response.headers_mut();
    let framing =
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            ResponseFraming::Empty
        } else if transfer_encoding {
            if headers.remove(header::CONTENT_LENGTH).is_some() {
                // Both framings at once smells of response splitting: use the connection no more.
                keep_alive = false;
            }
            if final_coding_is_chunked(headers) {
                ResponseFraming::Chunked
            } else {
                ResponseFraming::UntilClose
            }
        } else {
            match content_length(headers)? {
                Some(0) => ResponseFraming::Empty,
                Some(n) => ResponseFraming::Length(n),
                None => ResponseFraming::UntilClose,
            }
        };
    if framing == ResponseFraming::UntilClose {
        keep_alive = false;
    }
    Ok(ResponseHead {
        response,
        framing,
        keep_alive,
    })
}

fn final_coding_is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.as_bytes().rsplit(|b| *b == b',').next())
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The response's length, from every `Content-Length` value (repeated fields and lists).
/// Differing or invalid values are an error; equal repeats are folded into one field so
/// that the client sees an unambiguous length.
fn content_length(headers: &mut HeaderMap) -> Result<Option<u64>, H1Error> {
    let mut length = None;
    let mut fields = 0;
    let mut listed = false;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        fields += 1;
        listed |= value.as_bytes().contains(&b',');
        for item in value.as_bytes().split(|b| *b == b',') {
            let n = parse_decimal(item.trim_ascii())
                .ok_or(H1Error::Malformed("invalid Content-Length"))?;
            match length {
                Some(previous) if previous != n => {
                    return Err(H1Error::Malformed("conflicting Content-Length values"))
                }
                _ => length = Some(n),
            }
        }
    }
    if let Some(n) = length {
        if fields > 1 || listed {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    Ok(length)
}

/// Digits only: no sign, no spaces inside, no overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .flatten()
    })
}

fn is_reset(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(err.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<ParsedHead>, H1Error> {
        parse_head(&mut BytesMut::from(bytes))
    }

    fn framing_of(bytes: &[u8], head: bool) -> Result<ResponseHead, H1Error> {
        let response = parse(bytes).unwrap().unwrap();
        finish_head(response, head)
    }

    #[test]
    fn parses_a_head_and_leaves_the_body() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok"[..]);
        let response = parse_head(&mut buf).unwrap().unwrap().response;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-a"], "b");
        assert_eq!(&buf[..], b"ok");
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
    }

    #[test]
    fn connection_fields_are_read_and_left_out() {
        let parsed = parse(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nX-A: b\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(parsed.keep_alive && !parsed.close);
        let names: Vec<_> = parsed
            .response
            .headers()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(names, ["x-a"]);
        // A field named for removal must reach the proxy, which removes it.
        let listed =
            parse(b"HTTP/1.1 200 OK\r\nCONNECTION: close, X-Secret\r\nX-Secret: 1\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(listed.close);
        assert_eq!(listed.response.headers()["connection"], "close, X-Secret");
        let closing = framing_of(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(!closing.keep_alive);
        assert!(closing.response.headers().get("connection").is_none());
    }

    #[test]
    fn framing_rules() {
        let chunked = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(chunked.framing, ResponseFraming::Chunked);
        assert!(!chunked.response.headers().contains_key("content-length"));
        let te_not_chunked =
            framing_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).unwrap();
        assert_eq!(te_not_chunked.framing, ResponseFraming::UntilClose);
        assert!(!te_not_chunked.keep_alive);
        let head = framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).unwrap();
        assert_eq!(head.framing, ResponseFraming::Empty);
        assert!(head.keep_alive);
        let repeated = framing_of(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(repeated.framing, ResponseFraming::Length(5));
        assert_eq!(
            repeated
                .response
                .headers()
                .get_all("content-length")
                .iter()
                .count(),
            1
        );
        let old = framing_of(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).unwrap();
        assert!(!old.keep_alive);
        let old_kept = framing_of(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(old_kept.keep_alive);
    }

    #[test]
    fn hostile_heads_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            let response = parse(bad).unwrap().unwrap();
            assert!(finish_head(response, false).is_err());
        }
        assert!(parse(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse(b"NOT HTTP\r\n\r\n").is_err());
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            many.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(parse(&many).is_err());
        let mut huge = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
        huge.resize(MAX_HEAD + 10, b'a');
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), None);
        assert_eq!(
            parse_decimal(b"1844674407370955161"),
            Some(1_844_674_407_370_955_161)
        );
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b""), None);
    }
}
