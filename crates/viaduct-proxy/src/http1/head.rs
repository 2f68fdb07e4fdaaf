//! Parsing a request head (RFC 9112 §2–3, §6) out of the connection's buffer, without
//! copying: the URI and header values are slices of the frozen head bytes.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, StatusCode, Uri, Version};
use viaduct_upstream::BodyDecoder;

/// hyper's (and so far Viaduct's) limit on the number of request header fields.
const MAX_HEADERS: usize = 100;

/// A parsed request head and how its body is framed.
pub(crate) struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// `None` when the request has no body.
    pub body: Option<BodyDecoder>,
    /// The framing was ambiguous enough (`Transfer-Encoding` with `Content-Length`) that the
    /// connection must not carry another request.
    pub must_close: bool,
    /// What the connection-level fields asked for, noted while the fields were parsed so that
    /// the server looks none of them up again.
    pub asks: Asks,
}

/// What a request's connection-level fields ask of the server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asks {
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: upgrade` with an `Upgrade` field (whatever the protocol, h2c included).
    pub upgrade: bool,
    /// The first `Upgrade` value is `h2c`.
    pub h2c: bool,
    /// `Expect: 100-continue`.
    pub continue_first: bool,
}

/// The fields the server acts on itself, recognised by their raw (any-case) names.
#[derive(Default)]
struct Seen {
    hosts: u8,
    upgrade_token: bool,
    upgrade_field: bool,
    transfer_encoding: bool,
    content_length: bool,
}

/// Why the buffer holds no request yet.
pub(crate) enum ParseError {
    /// Answer with this status and close.
    Reject(StatusCode),
    /// The HTTP/2 connection preface: the connection speaks h2c with prior knowledge.
    Http2Preface,
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read more (the caller
/// enforces the size limit). On success the head's bytes are consumed from `buf`.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<RequestHead>, ParseError> {
    // Left uninitialised: zeroing 100 slots per request cost more than parsing them.
    let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) if buf.starts_with(b"PRI * HTTP/2.0") => {
            return Err(ParseError::Http2Preface)
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ParseError::Reject(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ))
        }
        Err(_) => return Err(ParseError::Reject(StatusCode::BAD_REQUEST)),
    };
    let base = buf.as_ptr() as usize;
    // u32 offsets: a head is at most `maxHeaderBytes`, far below 4 GiB (checked below).
    let span = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        (start as u32, (start + part.len()) as u32)
    };
    if buf.len() > u32::MAX as usize {
        return Err(ParseError::Reject(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ));
    }
    let bad = || ParseError::Reject(StatusCode::BAD_REQUEST);
    let method =
        Method::from_bytes(request.method.ok_or_else(bad)?.as_bytes()).map_err(|_| bad())?;
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let (path_start, path_end) = span(request.path.ok_or_else(bad)?.as_bytes());
    // Where each name and value lies in the head, kept while the head is still borrowed.
    let mut spans = [((0, 0), (0, 0)); MAX_HEADERS];
    let count = request.headers.len();
    for (slot, field) in spans.iter_mut().zip(request.headers.iter()) {
        *slot = (span(field.name.as_bytes()), span(field.value));
    }

    let head: Bytes = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_start as usize..path_end as usize))
        .map_err(|_| bad())?;
    // Room for the forwarded headers the proxy adds, so that adding them does not regrow
    // (and rehash) the map.
    let mut headers = HeaderMap::with_capacity(count + 8);
    let mut asks = Asks::default();
    let mut seen = Seen::default();
    for &((name_start, name_end), (value_start, value_end)) in &spans[..count] {
        let raw_name = &head[name_start as usize..name_end as usize];
        let raw_value = &head[value_start as usize..value_end as usize];
        note(raw_name, raw_value, &mut asks, &mut seen);
        let name = HeaderName::from_bytes(raw_name).map_err(|_| bad())?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value_start as usize..value_end as usize))
                .map_err(|_| bad())?;
        headers.append(name, value);
    }
    asks.upgrade = seen.upgrade_token && seen.upgrade_field;
    // RFC 9112 §3.2: one Host, and none missing from an HTTP/1.1 origin-form request. (The
    // handler's `validate::check` applies the same rules to requests from other servers.)
    if seen.hosts > 1
        || (seen.hosts == 0 && version == Version::HTTP_11 && uri.authority().is_none())
    {
        return Err(bad());
    }
    let (body, must_close) = framing(&mut headers, &seen)?;
    Ok(Some(RequestHead {
        method,
        uri,
        version,
        headers,
        body,
        must_close,
        asks,
    }))
}

/// Notes what a field asks of the server, if it is one the server acts on.
fn note(name: &[u8], value: &[u8], asks: &mut Asks, seen: &mut Seen) {
    let is = |expected: &[u8]| name.eq_ignore_ascii_case(expected);
    match name.len() {
        10 if is(b"connection") => {
            for token in value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                asks.close |= token.eq_ignore_ascii_case(b"close");
                seen.upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
            }
        }
        7 if is(b"upgrade") => {
            if !seen.upgrade_field {
                asks.h2c = value.eq_ignore_ascii_case(b"h2c");
            }
            seen.upgrade_field = true;
        }
        6 if is(b"expect") => {
            asks.continue_first |= value.eq_ignore_ascii_case(b"100-continue");
        }
        4 if is(b"host") => seen.hosts = seen.hosts.saturating_add(1),
        14 if is(b"content-length") => seen.content_length = true,
        17 if is(b"transfer-encoding") => seen.transfer_encoding = true,
        _ => {}
    }
}

/// RFC 9112 §6.3: `Transfer-Encoding` wins over `Content-Length` (which is removed, and the
/// connection closed after the exchange: the two together smell of request smuggling); a
/// final coding other than `chunked` leaves the length unknowable (400); `Content-Length`
/// must be one number, repeated identically if repeated.
fn framing(
    headers: &mut HeaderMap,
    seen: &Seen,
) -> Result<(Option<BodyDecoder>, bool), ParseError> {
    let bad = ParseError::Reject(StatusCode::BAD_REQUEST);
    if seen.transfer_encoding {
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim);
        if !last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")) {
            return Err(bad);
        }
        // Framed by chunked, but with a coding the proxy does not implement: forwarding would
        // strip the header and hand the backend bytes it was not told about (§6.1).
        let only_chunked = headers.get_all(TRANSFER_ENCODING).iter().all(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .all(|c| c.is_empty() || c.eq_ignore_ascii_case(b"chunked"))
        });
        if !only_chunked {
            return Err(ParseError::Reject(StatusCode::NOT_IMPLEMENTED));
        }
        let had_length = headers.remove(CONTENT_LENGTH).is_some();
        return Ok((Some(BodyDecoder::chunked()), had_length));
    }
    if !seen.content_length {
        return Ok((None, false));
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| ParseError::Reject(StatusCode::BAD_REQUEST))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::Reject(StatusCode::BAD_REQUEST));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| ParseError::Reject(StatusCode::BAD_REQUEST))?;
            if length.is_some_and(|l| l != n) {
                return Err(ParseError::Reject(StatusCode::BAD_REQUEST));
            }
            length = Some(n);
        }
    }
    Ok((length.filter(|n| *n > 0).map(BodyDecoder::length), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Option<RequestHead>, ParseError> {
        parse(&mut BytesMut::from(text.as_bytes()))
    }

    fn status(text: &str) -> Option<StatusCode> {
        match parsed(text) {
            Err(ParseError::Reject(s)) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn a_simple_head_leaves_the_rest_in_the_buffer() {
        let mut buf = BytesMut::from(&b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Y: 1\r\n\r\nNEXT"[..]);
        let head = parse(&mut buf).ok().flatten().unwrap();
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.uri, "/a?b");
        assert_eq!(head.headers["x-y"], "1");
        assert!(head.body.is_none());
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn connection_level_asks_are_noted() {
        let head = parsed(
            "GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: keep-alive, Upgrade\r\nupgrade: websocket\r\nConnection: close\r\n\r\n",
        )
        .ok()
        .flatten()
        .unwrap();
        assert_eq!(
            head.asks,
            Asks {
                close: true,
                upgrade: true,
                h2c: false,
                continue_first: false
            }
        );
        let head = parsed(
            "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
        )
        .ok()
        .flatten()
        .unwrap();
        // An Upgrade field that Connection does not name asks for nothing.
        assert!(
            !head.asks.upgrade && head.asks.h2c && head.asks.continue_first && !head.asks.close
        );
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        assert!(matches!(parsed("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None)));
    }

    #[test]
    fn framing_rules() {
        let head = parsed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n")
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(head.body.unwrap().remaining_exact(), Some(5));
        let head = parsed(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .ok()
        .flatten()
        .unwrap();
        assert!(head.must_close);
        assert!(!head.headers.contains_key(CONTENT_LENGTH));
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn malformed_heads_are_refused() {
        assert_eq!(
            status("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status("GET /\u{1} HTTP/1.1\r\n\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        let many: String = (0..101).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert!(matches!(
            parsed("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Err(ParseError::Http2Preface)
        ));
    }
}
