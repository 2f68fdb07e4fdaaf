//! Streaming base64 (standard alphabet, padded) for gRPC-Web's text mode.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes a stream chunk by chunk: whole 3-byte groups as they come, the rest at the end.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    pending: Vec<u8>,
}

impl Encoder {
    pub fn push(&mut self, data: &[u8]) -> String {
        self.pending.extend_from_slice(data);
        let whole = self.pending.len() / 3 * 3;
        let out = encode(&self.pending[..whole]);
        self.pending.drain(..whole);
        out
    }

    pub fn finish(&mut self) -> String {
        let out = encode(&self.pending);
        self.pending.clear();
        out
    }
}

/// Decodes a stream chunk by chunk; padding may end one segment and another follow.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, text: &[u8]) -> Result<Vec<u8>, String> {
        self.pending
            .extend(text.iter().copied().filter(|b| !b.is_ascii_whitespace()));
        let whole = self.pending.len() / 4 * 4;
        let out = decode_groups(&self.pending[..whole])?;
        self.pending.drain(..whole);
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err("the base64 body ends in the middle of a group".into())
        }
    }
}

pub(crate) fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode_groups(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for group in text.chunks(4) {
        let mut n = 0u32;
        let mut padding = 0;
        for &c in group {
            let value = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    padding += 1;
                    0
                }
                _ => return Err(format!("{:?} is not base64", char::from(c))),
            };
            n = (n << 6) | u32::from(value);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - padding.min(2)]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_pieces() {
        let data: Vec<u8> = (0..=255u8).collect();
        let mut encoder = Encoder::default();
        let mut text = String::new();
        for piece in data.chunks(7) {
            text.push_str(&encoder.push(piece));
        }
        text.push_str(&encoder.finish());
        assert_eq!(text.len(), 344);
        let mut decoder = Decoder::default();
        let mut back = Vec::new();
        for piece in text.as_bytes().chunks(5) {
            back.extend(decoder.push(piece).unwrap());
        }
        decoder.finish().unwrap();
        assert_eq!(back, data);
        assert_eq!(encode(b"abc"), "YWJj");
        assert_eq!(encode(b"ab"), "YWI=");
        assert_eq!(
            Decoder::default().push(b"AAAAAANhYmM=").unwrap(),
            b"\0\0\0\0\x03abc"
        );
    }
}
