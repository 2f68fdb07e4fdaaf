//! RESP2 encoding of commands and bounded decoding of replies.
//!
//! The decoder never trusts a length it reads: lines, bulk strings, arrays and nesting all
//! have ceilings, so a broken or hostile server gives an error, not a panic or a huge
//! allocation.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::{RedisError, Reply};

/// The longest header line (`$12\r\n`, `+OK\r\n`, an error message).
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// The largest bulk string accepted (configuration values and script answers are small).
pub const MAX_BULK_BYTES: usize = 64 * 1024 * 1024;
/// The most elements one array may announce (a `SCAN` page or an `MGET` of a large store).
pub const MAX_ARRAY_LEN: usize = 1024 * 1024;
/// Replies Viaduct reads nest two levels (`SCAN`, pub/sub); more is a broken server.
const MAX_DEPTH: usize = 8;
/// Memory reserved up front for an array, whatever length it announces.
const ARRAY_PREALLOCATION: usize = 1024;

/// `*<n>\r\n` then `$<len>\r\n<arg>\r\n` per argument.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let size: usize = args.iter().map(|a| a.len() + 16).sum();
    let mut buffer = Vec::with_capacity(size + 16);
    buffer.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buffer.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buffer.extend_from_slice(arg);
        buffer.extend_from_slice(b"\r\n");
    }
    buffer
}

/// Reads one reply. A server error (`-ERR …`) is `Err(RedisError::Server)`.
pub async fn read_reply<R: AsyncBufRead + Unpin>(stream: &mut R) -> Result<Reply, RedisError> {
    read_at_depth(stream, 0).await
}

async fn read_at_depth<R: AsyncBufRead + Unpin>(
    stream: &mut R,
    depth: usize,
) -> Result<Reply, RedisError> {
    if depth > MAX_DEPTH {
        return Err(RedisError::Protocol(format!(
            "replies nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let line = read_line(stream).await?;
    let (kind, text) = line.split_first().unwrap_or((&0, &[]));
    let text = String::from_utf8_lossy(text).into_owned();
    let length = |limit: usize| -> Result<Option<usize>, RedisError> {
        let n: i64 = text
            .parse()
            .map_err(|_| RedisError::Protocol(format!("{text:?} is not a length")))?;
        if n < 0 {
            return Ok(None);
        }
        match usize::try_from(n) {
            Ok(n) if n <= limit => Ok(Some(n)),
            _ => Err(RedisError::Protocol(format!(
                "announced length {n} is over the limit of {limit}"
            ))),
        }
    };
    match kind {
        b'+' => Ok(Reply::Simple(text)),
        b'-' => Err(RedisError::Server(text)),
        b':' => text
            .parse()
            .map(Reply::Integer)
            .map_err(|_| RedisError::Protocol(format!("{text:?} is not an integer"))),
        b'$' => {
            let Some(len) = length(MAX_BULK_BYTES)? else {
                return Ok(Reply::Bulk(None));
            };
            let mut data = vec![0; len + 2];
            stream.read_exact(&mut data).await?;
            if !data.ends_with(b"\r\n") {
                return Err(RedisError::Protocol(
                    "bulk string not followed by CRLF".into(),
                ));
            }
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let Some(len) = length(MAX_ARRAY_LEN)? else {
                return Ok(Reply::Array(None));
            };
            let mut items = Vec::with_capacity(len.min(ARRAY_PREALLOCATION));
            for _ in 0..len {
                items.push(Box::pin(read_at_depth(stream, depth + 1)).await?);
            }
            Ok(Reply::Array(Some(items)))
        }
        other => Err(RedisError::Protocol(format!(
            "unknown reply type {:?}",
            char::from(*other)
        ))),
    }
}

/// One `\r\n`-terminated line, without the terminator.
async fn read_line<R: AsyncBufRead + Unpin>(stream: &mut R) -> Result<Vec<u8>, RedisError> {
    let mut line = Vec::new();
    let read = (&mut *stream)
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Err(RedisError::Closed);
    }
    if !line.ends_with(b"\r\n") {
        return Err(RedisError::Protocol(if read as u64 >= MAX_LINE_BYTES {
            format!("a reply line is longer than {MAX_LINE_BYTES} bytes")
        } else {
            "connection closed in the middle of a reply".into()
        }));
    }
    line.truncate(line.len() - 2);
    if line.is_empty() {
        return Err(RedisError::Protocol("empty reply line".into()));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, RedisError> {
        let mut input = bytes;
        read_reply(&mut input).await
    }

    #[tokio::test]
    async fn decodes_every_type() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Reply::Simple("OK".into()));
        assert_eq!(parse(b":-42\r\n").await.unwrap(), Reply::Integer(-42));
        assert_eq!(
            parse(b"$5\r\nhe\r\no\r\n").await.unwrap(),
            Reply::Bulk(Some(b"he\r\no".to_vec()))
        );
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"*-1\r\n").await.unwrap(), Reply::Array(None));
        assert_eq!(
            parse(b"*2\r\n$1\r\n0\r\n*1\r\n$3\r\nkey\r\n")
                .await
                .unwrap(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![Reply::Bulk(Some(b"key".to_vec()))])),
            ]))
        );
        assert!(matches!(
            parse(b"-NOSCRIPT No matching script\r\n").await,
            Err(RedisError::Server(m)) if m.starts_with("NOSCRIPT")
        ));
    }

    #[tokio::test]
    async fn refuses_malformed_and_oversized_replies() {
        for bad in [
            &b""[..],
            b"+OK",
            b"\r\n",
            b"?what\r\n",
            b"$abc\r\n",
            b":1.5\r\n",
            b"$3\r\nab",
            b"$3\r\nabcde",
            b"$99999999999999999999\r\n",
            b"$100000000000\r\n",
            b"*9999999999\r\n",
            b"*3\r\n:1\r\n",
        ] {
            assert!(
                parse(bad).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "*1\r\n".repeat(100) + ":1\r\n";
        assert!(parse(deep.as_bytes()).await.is_err());
        let long = format!("+{}\r\n", "a".repeat(100_000));
        assert!(parse(long.as_bytes()).await.is_err());
    }

    #[test]
    fn encodes_binary_safe_arguments() {
        assert_eq!(
            encode_command(&[b"SET", b"k", b"a\r\nb"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n"
        );
    }
}
