//! The routing path and path sanitisation.

use crate::error::BadPath;
use std::borrow::Cow;

/// Percent-escapes that stay encoded in the routing path, so that `%2F` is not a segment
/// separator and `%25` does not start a new escape.
const RESERVED: &[u8] = b":/?#[]@!$&'()*+,;=%";

/// The path rules match against: the escaped request path with every percent-escape decoded
/// except those of reserved characters, whose hex digits are upper-cased (`%2f` → `%2F`).
///
/// Bytes that decode to invalid UTF-8 stay percent-encoded, so the result is always a `str`.
/// Borrows when the path holds no `%`.
pub fn routing_path(raw_path: &str) -> Result<Cow<'_, str>, BadPath> {
    if !raw_path.contains('%') {
        return Ok(Cow::Borrowed(raw_path));
    }
    let bytes = raw_path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            decoded.push(bytes[i]);
            i += 1;
            continue;
        }
        let byte = decode_escape(bytes, i).ok_or(BadPath { pos: i })?;
        if RESERVED.contains(&byte) {
            decoded.push(b'%');
            decoded
                .extend_from_slice(&[bytes[i + 1], bytes[i + 2]].map(|h| h.to_ascii_uppercase()));
        } else {
            decoded.push(byte);
        }
        i += 3;
    }
    Ok(Cow::Owned(encode_invalid_utf8(&decoded)))
}

/// Cleans a path like Go's `path.Clean` (collapsing `//`, `/./`, `/../`) but keeps a trailing
/// slash: `/./foo/../bar//` becomes `/bar/`. Borrows when the path is already clean.
pub fn sanitize_path(path: &str) -> Cow<'_, str> {
    if is_clean(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let mut cleaned = go_path_clean(path.as_bytes());
    if cleaned != b"/" && path.ends_with('/') {
        cleaned.push(b'/');
    }
    if cleaned == path.as_bytes() {
        return Cow::Borrowed(path);
    }
    // Only ASCII bytes are removed or inserted, so the result is still UTF-8.
    Cow::Owned(String::from_utf8_lossy(&cleaned).into_owned())
}

/// True when [`sanitize_path`] would return `path` unchanged: rooted, and no segment empty
/// (but a trailing one), `.` or `..`. Nearly every request path is, and this check spares
/// them the cleaning copy.
fn is_clean(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/") else {
        return false;
    };
    let mut segments = rest.split(|b| *b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if (segment.is_empty() && !last) || segment == b"." || segment == b".." {
            return false;
        }
    }
    true
}

/// Decodes `%XX` at `at`, or `None` if it is malformed.
pub(crate) fn decode_escape(bytes: &[u8], at: usize) -> Option<u8> {
    let hi = hex_value(*bytes.get(at + 1)?)?;
    let lo = hex_value(*bytes.get(at + 2)?)?;
    Some(hi << 4 | lo)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn encode_invalid_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A port of Go's `path.Clean`.
fn go_path_clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    let at = |i: usize| path.get(i).copied();
    while r < n {
        let empty_or_dot =
            path[r] == b'/' || (path[r] == b'.' && (r + 1 == n || at(r + 1) == Some(b'/')));
        if empty_or_dot {
            r += 1;
        } else if path[r] == b'.'
            && at(r + 1) == Some(b'.')
            && (r + 2 == n || at(r + 2) == Some(b'/'))
        {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path must agree with the cleaning: every rooted path of up to seven bytes made
    /// of `/`, `.` and `a` is clean exactly when cleaning leaves it unchanged.
    #[test]
    fn the_clean_check_agrees_with_cleaning() {
        let alphabet = [b'/', b'.', b'a'];
        let mut paths: Vec<Vec<u8>> = vec![b"/".to_vec()];
        let mut frontier = paths.clone();
        for _ in 0..6 {
            let mut next = Vec::new();
            for path in &frontier {
                for c in alphabet {
                    let mut longer = path.clone();
                    longer.push(c);
                    next.push(longer);
                }
            }
            paths.extend(next.iter().cloned());
            frontier = next;
        }
        for path in paths {
            let mut cleaned = go_path_clean(&path);
            if cleaned != b"/" && path.ends_with(b"/") {
                cleaned.push(b'/');
            }
            let text = String::from_utf8_lossy(&path);
            assert_eq!(is_clean(&path), cleaned == path, "{text}");
        }
    }
}
