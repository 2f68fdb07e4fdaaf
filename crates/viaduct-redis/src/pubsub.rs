//! `PSUBSCRIBE` on a dedicated connection: once subscribed, a connection only carries
//! messages, so it is never pooled.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{resp, RedisError, Reply};

/// A subscribed connection. A connection silent for the keepalive period is sent a `PING`;
/// no answer within another period means it is gone (a half-open TCP connection never
/// errors by itself).
#[derive(Debug)]
pub struct Subscription {
    stream: BufReader<TcpStream>,
    keepalive: Duration,
    write_timeout: Duration,
}

/// How long a subscription may stay silent before it is checked with a `PING`.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);

/// One `pmessage`: the pattern that matched, the channel, and the payload (for keyspace
/// notifications, the channel is `__keyspace@<db>__:<key>` and the payload the event).
#[derive(Debug, Clone, PartialEq)]
pub struct PubSubMessage {
    pub pattern: String,
    pub channel: String,
    pub payload: Vec<u8>,
}

impl Subscription {
    pub(crate) async fn start(
        mut stream: BufReader<TcpStream>,
        patterns: &[&str],
        write_timeout: Duration,
    ) -> Result<Self, RedisError> {
        let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
        args.extend(patterns.iter().map(|p| p.as_bytes()));
        let buffer = resp::encode_command(&args);
        tokio::time::timeout(write_timeout, stream.get_mut().write_all(&buffer))
            .await
            .map_err(|_| RedisError::Timeout("take the command"))??;
        let mut subscription = Subscription {
            stream,
            keepalive: DEFAULT_KEEPALIVE,
            write_timeout,
        };
        for _ in patterns {
            let reply =
                tokio::time::timeout(write_timeout, resp::read_reply(&mut subscription.stream))
                    .await
                    .map_err(|_| RedisError::Timeout("confirm the subscription"))??;
            match frame(reply)? {
                (kind, _) if kind.eq_ignore_ascii_case("psubscribe") => {}
                (kind, _) => {
                    return Err(RedisError::Protocol(format!(
                        "expected a psubscribe confirmation, got {kind:?}"
                    )))
                }
            }
        }
        Ok(subscription)
    }

    /// Changes the silence after which the connection is checked (30 s by default).
    pub fn with_keepalive(mut self, keepalive: Duration) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Waits for the next message, as long as the connection is alive. An error means the
    /// connection is gone and a new subscription is needed.
    pub async fn next_message(&mut self) -> Result<PubSubMessage, RedisError> {
        let mut ping_sent = false;
        loop {
            let reply = match tokio::time::timeout(
                self.keepalive,
                resp::read_reply(&mut self.stream),
            )
            .await
            {
                Ok(reply) => reply?,
                Err(_) if ping_sent => return Err(RedisError::Timeout("answer a PING")),
                Err(_) => {
                    let ping = resp::encode_command(&[b"PING"]);
                    tokio::time::timeout(
                        self.write_timeout,
                        self.stream.get_mut().write_all(&ping),
                    )
                    .await
                    .map_err(|_| RedisError::Timeout("take a PING"))??;
                    ping_sent = true;
                    continue;
                }
            };
            ping_sent = false;
            let (kind, mut parts) = frame(reply)?;
            if !kind.eq_ignore_ascii_case("pmessage") {
                // Confirmations and `pong`s carry nothing to report.
                continue;
            }
            let (Some(payload), Some(channel), Some(pattern)) =
                (parts.pop(), parts.pop(), parts.pop())
            else {
                return Err(RedisError::Protocol("a pmessage without 4 parts".into()));
            };
            let text = |part: Vec<u8>| String::from_utf8_lossy(&part).into_owned();
            return Ok(PubSubMessage {
                pattern: text(pattern),
                channel: text(channel),
                payload,
            });
        }
    }
}

/// A pub/sub frame: its kind (`pmessage`, `psubscribe`) and its other parts as bytes.
fn frame(reply: Reply) -> Result<(String, Vec<Vec<u8>>), RedisError> {
    let Reply::Array(Some(items)) = reply else {
        return Err(RedisError::Protocol(format!(
            "a pub/sub frame that is not an array: {reply:?}"
        )));
    };
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Reply::Integer(n) => parts.push(n.to_string().into_bytes()),
            other => parts.push(other.into_bytes().unwrap_or_default()),
        }
    }
    if parts.is_empty() {
        return Err(RedisError::Protocol("an empty pub/sub frame".into()));
    }
    let kind = String::from_utf8_lossy(&parts.remove(0)).into_owned();
    Ok((kind, parts))
}
