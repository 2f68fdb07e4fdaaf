use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::checksum::Checksum;

/// A body of `len` deterministic bytes, produced chunk by chunk so that a 16 MiB body never sits
/// in memory whole. Used both for large request bodies and for the echo backend's large responses.
#[derive(Debug)]
pub struct PatternBody {
    offset: u64,
    len: u64,
    chunk: usize,
}

/// The byte at `index` of every pattern body. 251 is prime, so the pattern never lines up with
/// power-of-two chunk boundaries and a shifted or duplicated chunk changes the checksum.
pub fn pattern_byte(index: u64) -> u8 {
    ((index.wrapping_mul(31).wrapping_add(7)) % 251) as u8
}

/// The checksum a pattern body of `len` bytes must have on arrival.
pub fn pattern_checksum(len: u64) -> Checksum {
    let mut sum = Checksum::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(64 * 1024);
        buf.clear();
        buf.extend((offset..offset + n).map(pattern_byte));
        sum.update(&buf);
        offset += n;
    }
    sum
}

impl PatternBody {
    pub fn new(len: u64) -> Self {
        Self {
            offset: 0,
            len,
            chunk: 64 * 1024,
        }
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.offset >= self.len {
            return Poll::Ready(None);
        }
        let n = (self.len - self.offset).min(self.chunk as u64);
        let start = self.offset;
        let data: Vec<u8> = (start..start + n).map(pattern_byte).collect();
        self.offset += n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(data)))))
    }

    fn is_end_stream(&self) -> bool {
        self.offset >= self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.offset)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn body_matches_its_checksum() {
        let collected = PatternBody::new(200_000)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(collected.len(), 200_000);
        assert_eq!(Checksum::of(&collected), pattern_checksum(200_000));
    }
}
