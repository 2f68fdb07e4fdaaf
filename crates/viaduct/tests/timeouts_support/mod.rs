//! What the `timeouts` tests share: the proxy they start, a backend that records aborted
//! requests, a TLS client, and socket helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use viaduct_testkit::{Launch, ProxyUnderTest, RawConnection};

const ROUTES: &str = r#"
http:
  routers:
    plain:
      rule: "PathPrefix(`/`)"
      service: backend
    secure:
      rule: "PathPrefix(`/`)"
      service: backend
      tls: {}
  services:
    backend:
      loadBalancer:
        servers:
          - url: "{{backend}}"
"#;

pub const ANSWER_WAIT: Duration = Duration::from_secs(8);

pub const BIG_BODY: usize = 32 * 1024 * 1024;

/// Viaduct answers a body cut by `readTimeout` with 408 (see docs/decisions.md); Traefik gives
/// 504 (the body read timed out) or 499 (the read's failure cancelled the request first).
pub fn assert_cut_body_answer(proxy: &ProxyUnderTest, status: u16) {
    if proxy.kind().is_traefik() {
        assert!(status == 504 || status == 499, "status {status}");
    } else {
        assert_eq!(status, 408);
    }
}

pub fn assert_between(elapsed: Duration, min_ms: u64, max_ms: u64, what: &str) {
    assert!(
        elapsed >= Duration::from_millis(min_ms) && elapsed <= Duration::from_millis(max_ms),
        "{what} after {elapsed:?}, expected {min_ms}..{max_ms} ms"
    );
}

/// The proxy with entry point `web` and `timeouts` (lines under `respondingTimeouts`), routing
/// everything to `backend`; waits until a request is routed.
pub async fn start(timeouts: &str, backend: &str, pki: Option<&Pki>) -> ProxyUnderTest {
    start_with(timeouts, "", backend, pki).await
}

/// As [`start`], with `extra` (top-level static YAML) at the end.
pub async fn start_with(
    timeouts: &str,
    extra: &str,
    backend: &str,
    pki: Option<&Pki>,
) -> ProxyUnderTest {
    let responding = if timeouts.is_empty() {
        String::new()
    } else {
        format!("    transport:\n      respondingTimeouts:\n        {timeouts}")
    };
    let static_yaml = format!("{}{extra}", crate::common::static_config(&responding));
    let mut dynamic = ROUTES.to_string();
    if let Some(pki) = pki {
        dynamic.push_str(&format!(
            "tls:\n  certificates:\n    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
            pki.cert_file, pki.key_file
        ));
    }
    let proxy = Launch::new(crate::common::kind())
        .static_yaml(&static_yaml)
        .dynamic_yaml(&dynamic)
        .var("backend", backend)
        .start()
        .await
        .unwrap();
    let addr = proxy.addr("web");
    proxy
        .wait_for(
            "routing to the backend",
            Duration::from_secs(10),
            || async move {
                let probe = b"GET /ready HTTP/1.1\r\nHost: app.test\r\n\r\n";
                match RawConnection::exchange(addr, probe, Duration::from_secs(2)).await {
                    Ok(response) if response.status == 200 => Ok(Some(())),
                    Ok(response) => Err(format!("status {}", response.status)),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await
        .unwrap();
    if let Some(pki) = pki {
        proxy
            .wait_for("TLS routing", Duration::from_secs(10), || async move {
                let mut tls = pki.connect(addr, &[b"http/1.1"]).await;
                let probe =
                    b"GET /ready HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n";
                tls.write_all(probe).await.map_err(|e| e.to_string())?;
                let received = read_until_closed(&mut tls, Duration::from_secs(2)).await;
                match status_of(&received) {
                    Some(200) => Ok(Some(())),
                    other => Err(format!("status {other:?}")),
                }
            })
            .await
            .unwrap();
    }
    proxy
}

/// Whether bytes (or the end of the stream) wait to be read, without waiting or reading them.
pub async fn readable_now(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // `timeout` polls the peek once before looking at its (zero) deadline.
    tokio::time::timeout(Duration::ZERO, stream.peek(&mut byte))
        .await
        .is_ok()
}

/// Reads until the peer closes (EOF or reset) or `limit` passes.
pub async fn read_until_closed(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    received
}

pub fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Asks for `size` bytes, reads nothing for 2.5 s, then reads as fast as it can: returns the
/// number of bytes received and whether the whole response came.
pub async fn slow_read(addr: SocketAddr, size: usize) -> (usize, bool) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /big HTTP/1.1\r\nHost: app.test\r\nX-Echo-Body-Bytes: {size}\r\nX-Body-Bytes: {size}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = read_until_closed(&mut stream, Duration::from_secs(15)).await;
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(received.len(), |p| p + 4);
    let body = received.len() - head_end;
    (body, body == size)
}

/// A backend that records, per request path, whether the request's body arrived whole or the
/// proxy closed the connection before its end. It answers `200 ok`, after `X-Delay-Ms`.
pub struct RecordingBackend {
    addr: SocketAddr,
    aborted: Arc<Mutex<Vec<(String, Instant)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingBackend {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let aborted = Arc::new(Mutex::new(Vec::new()));
        let record = aborted.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve_recorded(stream, record.clone()));
            }
        });
        RecordingBackend {
            addr,
            aborted,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until the proxy abandoned the request for `path` mid-body; returns when
    /// it did.
    pub async fn wait_aborted(&self, path: &str, limit: Duration) -> Instant {
        let started = Instant::now();
        while started.elapsed() < limit {
            let aborted = self.aborted.lock().unwrap().clone();
            if let Some((_, at)) = aborted.iter().find(|(p, _)| p == path) {
                return *at;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the backend never saw the request for {path} aborted");
    }
}

impl Drop for RecordingBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_recorded(mut stream: TcpStream, aborted: Arc<Mutex<Vec<(String, Instant)>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let length = field("content-length:").unwrap_or(0) as usize;
        let delay = field("x-delay-ms:").unwrap_or(0);
        let chunked = head.contains("transfer-encoding: chunked");
        let complete = |buf: &[u8]| {
            if chunked {
                buf[head_end + 4..].ends_with(b"0\r\n\r\n")
            } else {
                buf.len() >= head_end + 4 + length
            }
        };
        while !complete(&buf) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    aborted.lock().unwrap().push((path, Instant::now()));
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        // Every request the proxy sends on this connection is answered before the next one.
        buf.clear();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if head.contains("upgrade: echo") {
            let switching =
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
            if stream.write_all(switching).await.is_err() {
                return;
            }
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if let Some(size) = field("x-body-bytes:") {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            let mut written = stream.write_all(head.as_bytes()).await;
            let mut left = size as usize;
            while written.is_ok() && left > 0 {
                let n = left.min(chunk.len());
                written = stream.write_all(&chunk[..n]).await;
                left -= n;
            }
            if written.is_err() {
                aborted.lock().unwrap().push((path, Instant::now()));
            }
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// A self-signed certificate for `secure.test`, and clients that trust it.
pub struct Pki {
    pub cert_file: String,
    pub key_file: String,
    client: Arc<rustls::ClientConfig>,
}

impl Pki {
    pub fn new(dir: &std::path::Path) -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["secure.test".to_string()]).unwrap();
        let cert_file = dir.join("secure.crt");
        let key_file = dir.join("secure.key");
        std::fs::write(&cert_file, certified.cert.pem()).unwrap();
        std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pki {
            cert_file: cert_file.display().to_string(),
            key_file: key_file.display().to_string(),
            client: Arc::new(client),
        }
    }

    pub async fn connect(
        &self,
        addr: SocketAddr,
        alpn: &[&[u8]],
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut config = (*self.client).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("secure.test").unwrap();
        tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap()
    }
}

/// curl over HTTP/2 to `path` on `secure.test`, printing only the status.
pub fn curl_h2(pki: &Pki, port: u16, path: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("curl");
    command
        .args(["-s", "--http2", "--cacert", &pki.cert_file, "--resolve"])
        .arg(format!("secure.test:{port}:127.0.0.1"))
        .args(["-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"])
        .arg(format!("https://secure.test:{port}{path}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}
