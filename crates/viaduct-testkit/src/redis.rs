use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::error::TestkitError;
use crate::ports::free_port;

/// A throwaway `redis-server` on a loopback port (no persistence), stopped on drop or by
/// [`RedisServer::stop`].
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts on a free port and waits until it accepts connections.
    pub async fn start() -> crate::Result<Self> {
        Self::start_on(free_port()?, &[]).await
    }

    /// Starts on `port` with `extra` arguments (`--rename-command CONFIG ""`, …).
    pub async fn start_on(port: u16, extra: &[&str]) -> crate::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                program: "redis-server".into(),
                source,
            })?;
        let server = RedisServer {
            port,
            child: Some(child),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(TestkitError::Io {
                    what: format!("redis-server on port {port}"),
                    source: std::io::Error::other("did not start within 10 s"),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sets every `(key, value)` in one `MSET`.
    pub async fn set(&self, pairs: &[(&str, &str)]) -> crate::Result<()> {
        let mut args = vec!["MSET"];
        for (key, value) in pairs {
            args.extend([*key, *value]);
        }
        self.command(&args).await.map(drop)
    }

    pub async fn del(&self, key: &str) -> crate::Result<()> {
        self.command(&["DEL", key]).await.map(drop)
    }

    /// Sends one command on a new connection; the first line of the answer (an error reply is
    /// an error).
    pub async fn command(&self, args: &[&str]) -> crate::Result<String> {
        let io = |e| TestkitError::io(format!("redis-server on port {}", self.port), e);
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(io)?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(io)?;
        if let Some(error) = line.strip_prefix('-') {
            return Err(io(std::io::Error::other(error.trim_end().to_string())));
        }
        Ok(line.trim_end().to_string())
    }

    /// Stops the server now (a test of an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
