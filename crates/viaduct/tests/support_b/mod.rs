//! Backends and tools the part-B middleware tests share: a backend whose bodies finish
//! when told, a refused port, real decoders, a throwaway Redis.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_testkit::{HttpClient, ProxyUnderTest, RequestSpec};

use super::common;

pub use super::common::ECHO_SERVICE as SERVICE;

/// GET `path` on the proxy's `web` entry point with `host`.
pub fn spec(proxy: &ProxyUnderTest, host: &str, path: &str) -> RequestSpec {
    RequestSpec::get(&format!("{}{path}", proxy.url("web"))).header("host", host)
}

/// POST `/` with the body `payload` on the proxy's `web` entry point with `host`.
pub fn post_payload(proxy: &ProxyUnderTest, host: &str) -> RequestSpec {
    RequestSpec::new(http::Method::POST, &format!("{}/", proxy.url("web")))
        .header("host", host)
        .body(viaduct_testkit::RequestBody::Bytes("payload".into()))
}

/// A backend whose answers send their head and a first chunk at once, and finish only when
/// told: a response whose body is still in progress.
pub struct SlowBodyBackend {
    pub addr: std::net::SocketAddr,
    pub finish: std::sync::Arc<tokio::sync::Notify>,
    accept: tokio::task::JoinHandle<()>,
}

impl SlowBodyBackend {
    pub async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let finish = std::sync::Arc::new(tokio::sync::Notify::new());
        let notify = finish.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let notify = notify.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let slow = String::from_utf8_lossy(&head)
                        .to_ascii_lowercase()
                        .contains("x-slow");
                    let start = "HTTP/1.1 200 OK\r\nx-backend: slow\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
                    if stream.write_all(start.as_bytes()).await.is_err() {
                        return;
                    }
                    if slow {
                        notify.notified().await;
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                    let _ = stream.read(&mut buf).await;
                });
            }
        });
        SlowBodyBackend {
            addr,
            finish,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the proxy with one router for `host` through the middleware `name` (`options`:
    /// its YAML, 6-space indent) to this backend, and waits until the router answers.
    pub async fn start_proxy(&self, host: &str, name: &str, options: &str) -> ProxyUnderTest {
        let dynamic = format!(
            r#"
http:
  routers:
    slow:
      rule: "Host(`{host}`)"
      service: slow
      middlewares: [{name}]
  middlewares:
    {name}:
{options}
  services:
    slow:
      loadBalancer:
        servers:
          - url: "{{{{slow}}}}"
"#
        );
        let proxy = common::start(&dynamic, &[("slow", self.url())]).await;
        common::wait_backend(&proxy, &HttpClient::http1(), host, "/", "slow").await;
        proxy
    }
}

/// A request written on its own connection to the `web` entry point, and what has come back.
pub struct RawExchange {
    stream: tokio::net::TcpStream,
    pub seen: Vec<u8>,
}

impl RawExchange {
    pub async fn send(proxy: &ProxyUnderTest, request: &[u8]) -> RawExchange {
        let mut stream = tokio::net::TcpStream::connect(proxy.addr("web"))
            .await
            .unwrap();
        stream.write_all(request).await.unwrap();
        RawExchange {
            stream,
            seen: Vec::new(),
        }
    }

    /// Reads until `done` holds for what came back: each read must bring bytes within 5 s
    /// (`what` names the wait when none came).
    pub async fn read_until(&mut self, what: &str, done: impl Fn(&[u8]) -> bool) {
        let mut buf = [0u8; 4096];
        while !done(&self.seen) {
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{what}: nothing within 5 s"))
                .unwrap();
            assert!(
                n > 0,
                "{what}: the proxy closed: {}",
                String::from_utf8_lossy(&self.seen)
            );
            self.seen.extend_from_slice(&buf[..n]);
        }
    }

    /// What came back, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).to_string()
    }
}

impl Drop for SlowBodyBackend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// An address nothing listens on: connecting is refused.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Decodes `data` with a real command-line decoder (`gzip`, `zstd`, `brotli`).
pub fn decode_with(tool: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new(tool)
        .args(["-d", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{tool} could not decode the body");
    output.stdout
}
