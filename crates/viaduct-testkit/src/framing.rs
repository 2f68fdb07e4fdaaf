//! HTTP/1 message framing shared by the raw client and the raw recorder: both must see exactly
//! where one message ends, so neither can rely on a lenient library.

/// Outcome of decoding a chunked body from the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// More bytes are needed.
    Incomplete,
    /// The decoded body and how many bytes of the buffer the chunked encoding used.
    Complete {
        body: Vec<u8>,
        consumed: usize,
    },
    Invalid(String),
}

pub(crate) fn decode_chunked(buf: &[u8]) -> Chunked {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else {
            return Chunked::Incomplete;
        };
        let line = String::from_utf8_lossy(&buf[pos..pos + line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return Chunked::Invalid(format!("bad chunk size line {line:?}"));
        };
        pos += line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else {
                    return Chunked::Incomplete;
                };
                pos += end + 2;
                if end == 0 {
                    return Chunked::Complete {
                        body,
                        consumed: pos,
                    };
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Chunked::Incomplete;
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Chunked::Invalid("chunk data not followed by CRLF".into());
        }
        pos += size + 2;
    }
}

pub(crate) fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Header pairs as text, in wire order.
pub(crate) fn header_pairs(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunks_and_trailers() {
        let wire = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\nNEXT";
        assert_eq!(
            decode_chunked(wire),
            Chunked::Complete {
                body: b"abcde".to_vec(),
                consumed: wire.len() - 4
            }
        );
        assert_eq!(decode_chunked(b"3\r\nab"), Chunked::Incomplete);
        assert!(matches!(decode_chunked(b"zz\r\n"), Chunked::Invalid(_)));
    }
}
