//! HTTP/1.1 message body framing (RFC 9112 §6–7), decoded from a buffer without I/O.
//!
//! Shared by the inline client (response bodies) and the entry points' HTTP/1.1 server
//! (request bodies): the caller owns the socket and the buffer, feeds what it reads, and
//! asks for the next piece.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// A chunk-size line longer than this (extensions included) is refused.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The trailer section of a chunked body, at most.
const MAX_TRAILERS: usize = 16 * 1024;
const MAX_TRAILER_FIELDS: usize = 64;

/// Where a body decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug)]
pub enum Decoded {
    Data(Bytes),
    /// The body is complete, with its trailers if it had any.
    Finished(Option<HeaderMap>),
    /// The buffer holds no complete piece: read more, then call again.
    NeedMore,
    Malformed(&'static str),
}

impl BodyDecoder {
    pub fn length(n: u64) -> Self {
        BodyDecoder {
            state: State::Length(n),
        }
    }

    pub fn chunked() -> Self {
        BodyDecoder {
            state: State::ChunkSize,
        }
    }

    /// A body delimited by the end of the connection (responses only).
    pub fn until_close() -> Self {
        BodyDecoder {
            state: State::UntilClose,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Marks the body finished or abandoned: nothing more is decoded.
    pub fn set_done(&mut self) {
        self.state = State::Done;
    }

    /// True when the last piece handed out completed a length-delimited body, so the caller
    /// can release the connection without another poll.
    pub fn is_length_complete(&self) -> bool {
        self.state == State::Length(0)
    }

    /// The exact bytes left, when the framing says.
    pub fn remaining_exact(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// True when the end of the stream completes the body (rather than truncating it).
    pub fn ends_at_eof(&self) -> bool {
        matches!(
            self.state,
            State::UntilClose | State::Done | State::Length(0)
        )
    }

    /// True while inside a length-delimited body (for naming a truncation).
    pub fn is_length(&self) -> bool {
        matches!(self.state, State::Length(_))
    }

    /// Bytes still owed by a length-delimited body.
    pub fn length_remaining(&self) -> u64 {
        match self.state {
            State::Length(n) => n,
            _ => 0,
        }
    }

    /// Takes the next piece of the body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Decoded {
        loop {
            match self.state {
                State::Done => return Decoded::Finished(None),
                State::Length(0) => {
                    self.state = State::Done;
                    return Decoded::Finished(None);
                }
                State::Length(remaining) | State::ChunkData(remaining) => {
                    if buf.is_empty() {
                        return Decoded::NeedMore;
                    }
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = remaining - take as u64;
                    self.state = match self.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Decoded::Data(data);
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Decoded::NeedMore;
                    }
                    return Decoded::Data(buf.split().freeze());
                }
                State::ChunkSize => {
                    // An empty size line would parse as a zero chunk: require a digit.
                    if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                        return Decoded::Malformed("invalid chunk size");
                    }
                    match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((line, size))) => {
                            let _ = buf.split_to(line);
                            self.state = if size == 0 {
                                State::Trailers
                            } else {
                                State::ChunkData(size)
                            };
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                            return Decoded::Malformed("chunk size line too long")
                        }
                        Ok(httparse::Status::Partial) => return Decoded::NeedMore,
                        Err(_) => return Decoded::Malformed("invalid chunk size"),
                    }
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Decoded::NeedMore;
                    }
                    if &buf[..2] != b"\r\n" {
                        return Decoded::Malformed("chunk data not followed by CRLF");
                    }
                    let _ = buf.split_to(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
                    match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let trailers = (!fields.is_empty()).then(|| trailer_map(fields));
                            let _ = buf.split_to(len);
                            self.state = State::Done;
                            return Decoded::Finished(trailers);
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILERS => {
                            return Decoded::Malformed("trailer section too large")
                        }
                        Ok(httparse::Status::Partial) => return Decoded::NeedMore,
                        Err(_) => return Decoded::Malformed("invalid trailer section"),
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut BodyDecoder, input: &[u8]) -> (Vec<u8>, Option<Option<HeaderMap>>) {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf) {
                Decoded::Data(d) => out.extend_from_slice(&d),
                Decoded::Finished(t) => return (out, Some(t)),
                Decoded::NeedMore => return (out, None),
                Decoded::Malformed(m) => panic!("{m}"),
            }
        }
    }

    #[test]
    fn chunked_with_trailers() {
        let mut d = BodyDecoder::chunked();
        let (body, end) = all(&mut d, b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n");
        assert_eq!(body, b"abcde");
        assert_eq!(end.unwrap().unwrap()["t"], "1");
        assert!(d.is_done());
    }

    #[test]
    fn partial_input_asks_for_more() {
        let mut d = BodyDecoder::chunked();
        let (body, end) = all(&mut d, b"5\r\nab");
        assert_eq!(body, b"ab");
        assert!(end.is_none());
        let mut d = BodyDecoder::length(4);
        let (body, end) = all(&mut d, b"abcdef");
        assert_eq!(body, b"abcd");
        assert!(end.is_some());
    }

    #[test]
    fn malformed_sizes_are_refused() {
        for input in [&b"\r\n"[..], b"zz\r\n", b"3\r\nabcXY"] {
            let mut d = BodyDecoder::chunked();
            let mut buf = BytesMut::from(input);
            let mut seen = false;
            for _ in 0..4 {
                if let Decoded::Malformed(_) = d.decode(&mut buf) {
                    seen = true;
                    break;
                }
            }
            assert!(seen, "{input:?}");
        }
    }
}
