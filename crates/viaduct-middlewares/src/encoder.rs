//! Streaming compressors for `compress`: bytes in, compressed bytes out as they come.

use std::io::{self, Write};

use bytes::Bytes;

/// The content codings `compress` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Brotli,
    Zstd,
}

impl Coding {
    pub fn from_name(name: &str) -> Option<Coding> {
        match name {
            "gzip" => Some(Coding::Gzip),
            "br" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// One response's compressor, writing into a buffer drained after each step.
pub(crate) enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    // zstd's context is not `Sync`; the body holding it must be. Never contended.
    Zstd(std::sync::Mutex<zstd::stream::write::Encoder<'static, Vec<u8>>>),
}

/// Levels close to the defaults of the Go libraries Traefik uses.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: u32 = 6;
const BROTLI_WINDOW: u32 = 22;
const ZSTD_LEVEL: i32 = 3;
const BROTLI_BUFFER: usize = 4096;

impl Encoder {
    pub fn new(coding: Coding) -> io::Result<Encoder> {
        Ok(match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW,
            ))),
            Coding::Zstd => Encoder::Zstd(std::sync::Mutex::new(
                zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?,
            )),
        })
    }

    /// Compresses `data`; returns the output produced so far (often empty: encoders batch).
    pub fn write(&mut self, data: &[u8]) -> io::Result<Bytes> {
        match self {
            Encoder::Gzip(e) => {
                e.write_all(data)?;
                Ok(drain(e.get_mut()))
            }
            Encoder::Brotli(e) => {
                e.write_all(data)?;
                Ok(drain(e.get_mut()))
            }
            Encoder::Zstd(e) => {
                let e = e
                    .get_mut()
                    .map_err(|_| io::Error::other("zstd encoder poisoned"))?;
                e.write_all(data)?;
                Ok(drain(e.get_mut()))
            }
        }
    }

    /// Pushes out everything written so far (a streaming response should not wait).
    pub fn flush(&mut self) -> io::Result<Bytes> {
        match self {
            Encoder::Gzip(e) => {
                e.flush()?;
                Ok(drain(e.get_mut()))
            }
            Encoder::Brotli(e) => {
                e.flush()?;
                Ok(drain(e.get_mut()))
            }
            Encoder::Zstd(e) => {
                let e = e
                    .get_mut()
                    .map_err(|_| io::Error::other("zstd encoder poisoned"))?;
                e.flush()?;
                Ok(drain(e.get_mut()))
            }
        }
    }

    /// Ends the stream; returns the last output.
    pub fn finish(self) -> io::Result<Bytes> {
        let out = match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Brotli(e) => e.into_inner(),
            Encoder::Zstd(e) => e
                .into_inner()
                .map_err(|_| io::Error::other("zstd encoder poisoned"))?
                .finish()?,
        };
        Ok(Bytes::from(out))
    }
}

fn drain(buffer: &mut Vec<u8>) -> Bytes {
    Bytes::from(std::mem::take(buffer))
}
