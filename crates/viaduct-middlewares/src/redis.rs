//! A small Redis client: what `rateLimit`'s shared backend needs (connect, AUTH, SELECT,
//! SCRIPT LOAD, EVALSHA) over RESP, with a pool of idle connections.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RedisSettings {
    /// `host:port`, tried in order.
    pub endpoints: Vec<String>,
    pub username: String,
    pub password: String,
    pub db: i64,
    /// Idle connections kept.
    pub pool_size: usize,
    pub dial_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisError {
    #[error("connecting to Redis at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("no Redis endpoint could be reached (tried {0})")]
    Unreachable(String),
    #[error("talking to Redis: {0}")]
    Io(#[from] std::io::Error),
    #[error("Redis did not {0} in time")]
    Timeout(&'static str),
    #[error("Redis answered an error: {0}")]
    Server(String),
    #[error("unexpected Redis answer: {0}")]
    Protocol(String),
}

/// A RESP value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

#[derive(Debug)]
pub(crate) struct RedisClient {
    settings: RedisSettings,
    idle: Mutex<Vec<Connection>>,
}

#[derive(Debug)]
struct Connection {
    stream: BufReader<TcpStream>,
    /// The SHA1 Redis gave the script on this connection's server.
    script_sha: Option<String>,
}

impl RedisClient {
    pub fn new(settings: RedisSettings) -> Self {
        RedisClient {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `script` (loaded once per connection, by SHA afterwards).
    pub async fn eval(
        &self,
        script: &str,
        keys: &[&str],
        args: &[String],
    ) -> Result<Reply, RedisError> {
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let result = self.eval_on(&mut conn, script, keys, args).await;
        // A connection that failed mid-exchange may hold half an answer: not reused.
        if !matches!(
            result,
            Err(RedisError::Io(_) | RedisError::Timeout(_) | RedisError::Protocol(_))
        ) {
            self.put_idle(conn);
        }
        result
    }

    async fn eval_on(
        &self,
        conn: &mut Connection,
        script: &str,
        keys: &[&str],
        args: &[String],
    ) -> Result<Reply, RedisError> {
        for _ in 0..2 {
            let sha = match &conn.script_sha {
                Some(sha) => sha.clone(),
                None => {
                    let sha = match self.command(conn, &["SCRIPT", "LOAD", script]).await? {
                        Reply::Bulk(Some(sha)) => String::from_utf8_lossy(&sha).into_owned(),
                        other => return Err(RedisError::Protocol(format!("{other:?}"))),
                    };
                    conn.script_sha = Some(sha.clone());
                    sha
                }
            };
            let count = keys.len().to_string();
            let mut command: Vec<&str> = vec!["EVALSHA", &sha, &count];
            command.extend_from_slice(keys);
            command.extend(args.iter().map(String::as_str));
            match self.command(conn, &command).await {
                // The server forgot its scripts (restart, SCRIPT FLUSH): load it again.
                Err(RedisError::Server(message)) if message.starts_with("NOSCRIPT") => {
                    conn.script_sha = None;
                }
                other => return other,
            }
        }
        Err(RedisError::Server("NOSCRIPT twice in a row".into()))
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn put_idle(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.settings.pool_size {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Connection, RedisError> {
        let mut last_error = None;
        for endpoint in &self.settings.endpoints {
            let attempt = tokio::time::timeout(
                self.settings.dial_timeout,
                TcpStream::connect(endpoint.as_str()),
            )
            .await;
            match attempt {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let mut conn = Connection {
                        stream: BufReader::new(stream),
                        script_sha: None,
                    };
                    self.handshake(&mut conn).await?;
                    return Ok(conn);
                }
                Ok(Err(source)) => {
                    last_error = Some(RedisError::Connect {
                        endpoint: endpoint.clone(),
                        source,
                    })
                }
                Err(_) => last_error = Some(RedisError::Timeout("accept the connection")),
            }
        }
        Err(last_error
            .unwrap_or_else(|| RedisError::Unreachable(self.settings.endpoints.join(", "))))
    }

    async fn handshake(&self, conn: &mut Connection) -> Result<(), RedisError> {
        let settings = &self.settings;
        if !settings.password.is_empty() {
            if settings.username.is_empty() {
                self.command(conn, &["AUTH", &settings.password]).await?;
            } else {
                self.command(conn, &["AUTH", &settings.username, &settings.password])
                    .await?;
            }
        }
        if settings.db != 0 {
            self.command(conn, &["SELECT", &settings.db.to_string()])
                .await?;
        }
        Ok(())
    }

    async fn command(&self, conn: &mut Connection, args: &[&str]) -> Result<Reply, RedisError> {
        let mut buffer = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            buffer.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            buffer.extend_from_slice(arg.as_bytes());
            buffer.extend_from_slice(b"\r\n");
        }
        tokio::time::timeout(self.settings.write_timeout, async {
            conn.stream.get_mut().write_all(&buffer).await
        })
        .await
        .map_err(|_| RedisError::Timeout("take the command"))??;
        tokio::time::timeout(self.settings.read_timeout, read_reply(&mut conn.stream))
            .await
            .map_err(|_| RedisError::Timeout("answer"))?
    }
}

/// One RESP value (arrays read recursively).
async fn read_reply(stream: &mut BufReader<TcpStream>) -> Result<Reply, RedisError> {
    let mut line = Vec::new();
    stream.read_until(b'\n', &mut line).await?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(RedisError::Protocol("connection closed".into()));
    }
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || {
        text.parse::<i64>()
            .map_err(|_| RedisError::Protocol(format!("{text:?} is not a length")))
    };
    match line[0] {
        b'+' => Ok(Reply::Simple(text)),
        b'-' => Err(RedisError::Server(text)),
        b':' => Ok(Reply::Integer(number()?)),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut data = vec![0; len as usize + 2];
            stream.read_exact(&mut data).await?;
            data.truncate(len as usize);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Array(None));
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(Box::pin(read_reply(stream)).await?);
            }
            Ok(Reply::Array(Some(items)))
        }
        other => Err(RedisError::Protocol(format!(
            "unknown reply type {:?}",
            char::from(other)
        ))),
    }
}
