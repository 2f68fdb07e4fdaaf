//! A body held whole: in memory up to a limit, the rest in a temporary file (removed once
//! nothing uses it). `buffering` keeps requests and responses in it, and can send a request
//! body again from it.

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, ReadBuf};
use viaduct_upstream::{Body, BoxError};

/// Size of the reads that stream a spooled file back.
const READ_CHUNK: usize = 64 * 1024;

/// A body being collected.
pub(crate) struct Spool {
    memory: BytesMut,
    memory_limit: u64,
    file: Option<(tempfile::NamedTempFile, tokio::fs::File)>,
    len: u64,
}

/// A collected body, to be read as many times as needed.
pub(crate) struct Spooled {
    memory: Bytes,
    /// Kept for its path; the file goes when this does (open readers keep their data).
    file: Option<tempfile::NamedTempFile>,
    len: u64,
}

/// Why collecting stopped.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// More than the allowed size.
    TooLarge,
    /// The body itself failed (the peer went away).
    Body(BoxError),
    /// The temporary file could not be written.
    Io(io::Error),
}

impl Spool {
    pub fn new(memory_limit: u64) -> Self {
        Spool {
            memory: BytesMut::new(),
            memory_limit,
            file: None,
            len: 0,
        }
    }

    /// Collects all of `body`, refusing more than `max` bytes (0: no limit).
    pub async fn collect(mut self, mut body: Body, max: u64) -> Result<Spool, SpoolError> {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(SpoolError::Body)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not kept
            };
            if max > 0 && self.len + data.len() as u64 > max {
                return Err(SpoolError::TooLarge);
            }
            self.push(data).await.map_err(SpoolError::Io)?;
        }
        Ok(self)
    }

    async fn push(&mut self, data: Bytes) -> io::Result<()> {
        self.len += data.len() as u64;
        if self.file.is_none() && self.memory.len() as u64 + data.len() as u64 <= self.memory_limit
        {
            self.memory.extend_from_slice(&data);
            return Ok(());
        }
        if self.file.is_none() {
            let named = tokio::task::spawn_blocking(tempfile::NamedTempFile::new)
                .await
                .map_err(io::Error::other)??;
            let writer = tokio::fs::File::from_std(named.as_file().try_clone()?);
            self.file = Some((named, writer));
        }
        if let Some((_, writer)) = self.file.as_mut() {
            writer.write_all(&data).await?;
        }
        Ok(())
    }

    /// Everything written out: ready to be read.
    pub async fn finish(self) -> io::Result<Spooled> {
        let file = match self.file {
            Some((named, mut writer)) => {
                writer.flush().await?;
                Some(named)
            }
            None => None,
        };
        Ok(Spooled {
            memory: self.memory.freeze(),
            file,
            len: self.len,
        })
    }
}

impl Spooled {
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The collected bytes as a body of exact length (a new reader each time).
    pub async fn body(&self) -> io::Result<Body> {
        let Some(named) = &self.file else {
            return Ok(viaduct_upstream::full_body(self.memory.clone()));
        };
        let mut file = tokio::fs::File::open(named.path()).await?;
        file.seek(SeekFrom::Start(0)).await?;
        Ok(Body::boxed(SpooledBody {
            memory: (!self.memory.is_empty()).then(|| self.memory.clone()),
            file,
            remaining: self.len - self.memory.len() as u64,
            buffer: vec![0; READ_CHUNK],
        }))
    }
}

struct SpooledBody {
    memory: Option<Bytes>,
    file: tokio::fs::File,
    /// Bytes left in the file.
    remaining: u64,
    buffer: Vec<u8>,
}

impl http_body::Body for SpooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(memory) = this.memory.take() {
            return Poll::Ready(Some(Ok(Frame::data(memory))));
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut read = ReadBuf::new(&mut this.buffer);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                let filled = read.filled();
                if filled.is_empty() {
                    return Poll::Ready(Some(Err("the spooled body file ended early".into())));
                }
                this.remaining = this.remaining.saturating_sub(filled.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(filled)))))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.memory.is_none() && self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        let memory = self.memory.as_ref().map_or(0, |m| m.len() as u64);
        SizeHint::with_exact(memory + self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(mut body: Body) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            out.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn memory_then_file_then_back() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let spool = Spool::new(1000)
            .collect(viaduct_upstream::full_body(data.clone()), 0)
            .await
            .unwrap();
        let spooled = spool.finish().await.unwrap();
        assert_eq!(spooled.len(), 300_000);
        for _ in 0..2 {
            let body = spooled.body().await.unwrap();
            assert_eq!(body.size_hint().exact(), Some(300_000));
            assert_eq!(read_all(body).await, data);
        }
    }

    #[tokio::test]
    async fn over_the_limit() {
        let result = Spool::new(10)
            .collect(viaduct_upstream::full_body(vec![0u8; 101]), 100)
            .await;
        assert!(matches!(result, Err(SpoolError::TooLarge)));
    }
}
