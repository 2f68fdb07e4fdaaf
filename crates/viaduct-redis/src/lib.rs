//! A small Redis client over RESP2: what Viaduct's distributed `rateLimit` and the Redis
//! provider need. Commands run on a pool of idle connections (each one authenticated and on
//! the configured database), Lua scripts are loaded once per connection and called by SHA,
//! and a [`Subscription`] holds its own connection for `PSUBSCRIBE` messages.
//!
//! Replies are decoded with ceilings on every length (see [`resp`]): a malformed or
//! oversized answer is an error, and the connection that carried it is dropped.

mod pubsub;
pub mod resp;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use pubsub::{PubSubMessage, Subscription};

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
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
pub enum RedisError {
    #[error("connecting to Redis at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("no Redis endpoint could be reached (tried {0})")]
    Unreachable(String),
    #[error("talking to Redis: {0}")]
    Io(#[from] std::io::Error),
    #[error("Redis closed the connection")]
    Closed,
    #[error("Redis did not {0} in time")]
    Timeout(&'static str),
    #[error("Redis answered an error: {0}")]
    Server(String),
    #[error("unexpected Redis answer: {0}")]
    Protocol(String),
}

/// A RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Commands on pooled connections.
#[derive(Debug)]
pub struct RedisClient {
    settings: RedisSettings,
    idle: Mutex<Vec<Connection>>,
}

#[derive(Debug)]
struct Connection {
    stream: BufReader<TcpStream>,
    /// The SHA1 Redis gave the script on this connection's server.
    script_sha: Option<String>,
}

impl RedisSettings {
    /// One endpoint, no credentials, database 0, the timeouts Traefik's Redis clients use.
    pub fn new(endpoints: Vec<String>) -> Self {
        RedisSettings {
            endpoints,
            username: String::new(),
            password: String::new(),
            db: 0,
            pool_size: 10,
            dial_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(3),
        }
    }
}

impl RedisError {
    /// Whether the connection that gave this error may still be in the middle of a reply
    /// (and so must not be reused).
    fn breaks_connection(&self) -> bool {
        !matches!(self, RedisError::Server(_))
    }
}

impl Reply {
    /// The bytes of a bulk or simple string.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Reply::Bulk(bytes) => bytes,
            Reply::Simple(text) => Some(text.into_bytes()),
            _ => None,
        }
    }
}

impl RedisClient {
    pub fn new(settings: RedisSettings) -> Self {
        RedisClient {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// Runs one command (`["CONFIG", "SET", "notify-keyspace-events", "KA"]`).
    pub async fn call(&self, args: &[&str]) -> Result<Reply, RedisError> {
        let mut conn = self.checkout().await?;
        let result = self.command(&mut conn, args).await;
        self.checkin(conn, &result);
        result
    }

    /// Every key matching `pattern`, by `SCAN` cursor pages of about `count` keys (never
    /// `KEYS`, which blocks the server). A key written during the scan may be missed or
    /// given twice, as `SCAN` documents; duplicates are removed.
    pub async fn scan(&self, pattern: &str, count: usize) -> Result<Vec<String>, RedisError> {
        let mut conn = self.checkout().await?;
        let result = self.scan_on(&mut conn, pattern, count).await;
        self.checkin(conn, &result);
        result
    }

    /// The values of `keys`, `None` for a key that does not exist (or is not a string).
    pub async fn mget(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["MGET"];
        args.extend(keys.iter().map(String::as_str));
        let values = match self.call(&args).await? {
            Reply::Array(Some(values)) if values.len() == keys.len() => values,
            other => return Err(unexpected("MGET", &other)),
        };
        values
            .into_iter()
            .map(|value| match value {
                Reply::Bulk(bytes) => Ok(bytes),
                other => Err(unexpected("MGET", &other)),
            })
            .collect()
    }

    /// Runs `script` (loaded once per connection, by SHA afterwards).
    pub async fn eval(
        &self,
        script: &str,
        keys: &[&str],
        args: &[String],
    ) -> Result<Reply, RedisError> {
        let mut conn = self.checkout().await?;
        let result = self.eval_on(&mut conn, script, keys, args).await;
        self.checkin(conn, &result);
        result
    }

    /// A new connection subscribed to `patterns`.
    pub async fn psubscribe(&self, patterns: &[&str]) -> Result<Subscription, RedisError> {
        let conn = self.connect().await?;
        Subscription::start(conn.stream, patterns, self.settings.write_timeout).await
    }

    async fn scan_on(
        &self,
        conn: &mut Connection,
        pattern: &str,
        count: usize,
    ) -> Result<Vec<String>, RedisError> {
        let count = count.max(1).to_string();
        let mut cursor = "0".to_string();
        let mut keys = Vec::new();
        loop {
            let reply = self
                .command(conn, &["SCAN", &cursor, "MATCH", pattern, "COUNT", &count])
                .await?;
            let Reply::Array(Some(mut parts)) = reply else {
                return Err(unexpected("SCAN", &reply));
            };
            let (Some(Reply::Array(Some(page))), Some(Reply::Bulk(Some(next))), None) =
                (parts.pop(), parts.pop(), parts.pop())
            else {
                return Err(RedisError::Protocol(
                    "SCAN did not answer [cursor, keys]".into(),
                ));
            };
            for key in page {
                match key {
                    Reply::Bulk(Some(key)) => keys.push(String::from_utf8_lossy(&key).into_owned()),
                    other => return Err(unexpected("SCAN", &other)),
                }
            }
            cursor = String::from_utf8_lossy(&next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
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
                        other => return Err(unexpected("SCRIPT LOAD", &other)),
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

    async fn checkout(&self) -> Result<Connection, RedisError> {
        match self.take_idle() {
            Some(conn) => Ok(conn),
            None => self.connect().await,
        }
    }

    /// A connection that failed mid-exchange may hold half an answer: not reused. The idle
    /// ones are dropped with it, since a broken connection usually means the server went
    /// away (restarted, failed over), and their next use would fail the same way.
    fn checkin<T>(&self, conn: Connection, result: &Result<T, RedisError>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if result
            .as_ref()
            .err()
            .is_some_and(RedisError::breaks_connection)
        {
            idle.clear();
            return;
        }
        if idle.len() < self.settings.pool_size {
            idle.push(conn);
        }
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
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
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let buffer = resp::encode_command(&args);
        tokio::time::timeout(self.settings.write_timeout, async {
            conn.stream.get_mut().write_all(&buffer).await
        })
        .await
        .map_err(|_| RedisError::Timeout("take the command"))??;
        tokio::time::timeout(
            self.settings.read_timeout,
            resp::read_reply(&mut conn.stream),
        )
        .await
        .map_err(|_| RedisError::Timeout("answer"))?
    }
}

fn unexpected(command: &str, reply: &Reply) -> RedisError {
    let mut shown = format!("{reply:?}");
    shown.truncate(200);
    RedisError::Protocol(format!("{command} answered {shown}"))
}
