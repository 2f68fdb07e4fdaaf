//! `respondingTimeouts.readTimeout` over the whole request (head and body) and `writeTimeout`
//! over the response, on plain HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS. Traefik's are
//! Go's `http.Server` timeouts; every test also runs against Traefik
//! (`VIADUCT_E2E_PROXY=traefik`), and assertions where Viaduct deliberately differs are guarded.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use viaduct_testkit::{EchoBackend, Launch, ProxyKind, ProxyUnderTest, RawConnection};

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

const ANSWER_WAIT: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------------------------------------
// readTimeout

/// A client that sends its head and part of its body, then nothing: at `readTimeout` the body
/// read fails, the upstream request is aborted and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_cuts_a_stalled_body() {
    let backend = RecordingBackend::start().await;
    let proxy = start("readTimeout: 1s", &backend.url(), None).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    let started = Instant::now();
    conn.send(b"POST /stalled HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nab")
        .await
        .unwrap();
    let response = conn.read_response(ANSWER_WAIT).await.unwrap();
    let elapsed = started.elapsed();
    assert_cut_body_answer(&proxy, response.status);
    assert_between(elapsed, 800, 3000, "answer to a stalled body");
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    backend
        .wait_aborted("/stalled", Duration::from_secs(3))
        .await;
}

/// A client that trickles its body, one byte at a time, never gets past `readTimeout` counted
/// from the request's first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_cuts_a_trickled_body() {
    let backend = RecordingBackend::start().await;
    let proxy = start("readTimeout: 1s", &backend.url(), None).await;
    let mut stream = TcpStream::connect(proxy.addr("web")).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /trickled HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"x").await.is_err() || started.elapsed() > ANSWER_WAIT {
            break;
        }
        if readable_now(&mut stream).await {
            break;
        }
    }
    let received = read_until_closed(&mut stream, ANSWER_WAIT).await;
    let elapsed = started.elapsed();
    assert_between(elapsed, 800, 3500, "end of a trickled body");
    let status = status_of(&received);
    // Go races the body's timeout against the request's cancellation: 504 or 499.
    if let Some(status) = status {
        assert_cut_body_answer(&proxy, status);
    } else {
        assert!(proxy.kind().is_traefik(), "no answer: {received:?}");
    }
    backend
        .wait_aborted("/trickled", Duration::from_secs(3))
        .await;
}

/// `readTimeout` bounds reading the request, not waiting for the backend: a slow backend is
/// answered, with or without a request body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_does_not_cut_a_slow_backend() {
    let backend = RecordingBackend::start().await;
    let proxy = start("readTimeout: 1s", &backend.url(), None).await;
    for request in [
        "GET /slow HTTP/1.1\r\nHost: app.test\r\nX-Delay-Ms: 1800\r\n\r\n",
        "POST /slow HTTP/1.1\r\nHost: app.test\r\nX-Delay-Ms: 1800\r\nContent-Length: 3\r\n\r\nabc",
    ] {
        let response = RawConnection::exchange(proxy.addr("web"), request.as_bytes(), ANSWER_WAIT)
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{request:?}");
        assert_eq!(response.body, b"ok");
    }
}

/// Each request on a kept-alive connection has its own `readTimeout`, counted from its first
/// byte: a connection older than the timeout still carries bodies that take most of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_each_get_their_own_read_timeout() {
    let backend = RecordingBackend::start().await;
    let proxy = start("readTimeout: 1s", &backend.url(), None).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    for round in 0..3 {
        conn.send(b"POST /again HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nab")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        conn.send(b"cd").await.unwrap();
        let response = conn.read_response(ANSWER_WAIT).await.unwrap();
        assert_eq!(response.status, 200, "request {round}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// writeTimeout

/// A backend slower than `writeTimeout`: the client gets no answer, the connection closes.
/// Viaduct closes it at the deadline; Go closes it when the handler returns (when the backend
/// finally answers), having failed to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_timeout_cuts_a_slow_backend() {
    let backend = RecordingBackend::start().await;
    let proxy = start("writeTimeout: 1s", &backend.url(), None).await;
    let mut stream = TcpStream::connect(proxy.addr("web")).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: app.test\r\nX-Delay-Ms: 3000\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream, ANSWER_WAIT).await;
    let elapsed = started.elapsed();
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    if !proxy.kind().is_traefik() {
        // Viaduct frees the connection and the upstream request at the deadline.
        assert_between(elapsed, 800, 2500, "close at writeTimeout");
    } else {
        assert_between(elapsed, 800, 4500, "close after the backend answered");
    }
}

/// A client that stops reading a large response: at `writeTimeout` the proxy stops writing and
/// closes, so the client gets less than the whole body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_timeout_cuts_a_slow_reading_client() {
    let backend = RecordingBackend::start().await;
    let proxy = start("writeTimeout: 1s", &backend.url(), None).await;
    let started = Instant::now();
    let (received, complete) = slow_read(proxy.addr("web"), BIG_BODY).await;
    assert!(
        !complete && received < BIG_BODY,
        "{received} of {BIG_BODY} bytes despite writeTimeout"
    );
    // Cut at the deadline, while the client was not reading yet.
    let aborted = backend.wait_aborted("/big", Duration::from_secs(1)).await;
    assert_between(aborted - started, 800, 2400, "upstream abort");
}

/// `writeTimeout` is off by default: a slow backend and a slow reader both get their answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_timeout_is_off_by_default() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let proxy = start("", &echo.url(), None).await;
    let request = "GET /slow HTTP/1.1\r\nHost: app.test\r\nX-Echo-Delay-Ms: 1500\r\n\r\n";
    let response = RawConnection::exchange(proxy.addr("web"), request.as_bytes(), ANSWER_WAIT)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let (received, complete) = slow_read(proxy.addr("web"), BIG_BODY).await;
    assert!(complete, "{received} of {BIG_BODY} bytes");
}

/// An upgraded connection is a tunnel, not a request: neither timeout applies to it (Go clears
/// the deadlines of a hijacked connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_connections_outlive_both_timeouts() {
    let backend = RecordingBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let proxy = start(
        "readTimeout: 1s\n        writeTimeout: 1s",
        &backend.url(),
        Some(&pki),
    )
    .await;
    let upgrade = |host: &str| {
        format!(
            "GET /tunnel HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
        )
    };
    let plain = TcpStream::connect(proxy.addr("web")).await.unwrap();
    let mut plain = tokio::io::BufStream::new(plain);
    tunnel_echoes_after(&mut plain, &upgrade("app.test")).await;
    let tls = pki.connect(proxy.addr("web"), &[b"http/1.1"]).await;
    let mut tls = tokio::io::BufStream::new(tls);
    tunnel_echoes_after(&mut tls, &upgrade("secure.test")).await;
}

/// Upgrades, waits past the timeouts, and checks that the tunnel still echoes.
async fn tunnel_echoes_after(
    stream: &mut (impl tokio::io::AsyncBufRead + AsyncWriteExt + Unpin),
    request: &str,
) {
    use tokio::io::AsyncBufReadExt;
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        let n = tokio::time::timeout(ANSWER_WAIT, stream.read_line(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {head:?}");
    }
    assert!(head.starts_with("HTTP/1.1 101"), "{head:?}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    stream.write_all(b"ping").await.unwrap();
    stream.flush().await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(ANSWER_WAIT, stream.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
}

// ---------------------------------------------------------------------------------------------
// Over TLS

/// HTTP/1.1 over TLS (hyper's server): a stalled body is cut at `readTimeout`, a slow backend at
/// `writeTimeout`, and a slow backend within both timeouts is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_http1_read_and_write_timeouts() {
    let backend = RecordingBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let proxy = start(
        "readTimeout: 1s\n        writeTimeout: 2s",
        &backend.url(),
        Some(&pki),
    )
    .await;
    let addr = proxy.addr("web");

    let mut tls = pki.connect(addr, &[b"http/1.1"]).await;
    let started = Instant::now();
    tls.write_all(
        b"POST /stalled-tls HTTP/1.1\r\nHost: secure.test\r\nContent-Length: 10\r\n\r\nab",
    )
    .await
    .unwrap();
    let received = read_until_closed(&mut tls, ANSWER_WAIT).await;
    assert_between(started.elapsed(), 800, 3000, "answer to a stalled body");
    match status_of(&received) {
        Some(status) => assert_cut_body_answer(&proxy, status),
        None => panic!("no answer: {:?}", String::from_utf8_lossy(&received)),
    }
    backend
        .wait_aborted("/stalled-tls", Duration::from_secs(3))
        .await;

    let mut tls = pki.connect(addr, &[b"http/1.1"]).await;
    let started = Instant::now();
    tls.write_all(b"GET /slow HTTP/1.1\r\nHost: secure.test\r\nX-Delay-Ms: 4000\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut tls, ANSWER_WAIT).await;
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    if !proxy.kind().is_traefik() {
        assert_between(started.elapsed(), 1800, 3500, "close at writeTimeout");
    }

    let mut tls = pki.connect(addr, &[b"http/1.1"]).await;
    tls.write_all(
        b"GET /slow HTTP/1.1\r\nHost: secure.test\r\nX-Delay-Ms: 1300\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let received = read_until_closed(&mut tls, ANSWER_WAIT).await;
    assert_eq!(status_of(&received), Some(200));
}

/// HTTP/1.1 over TLS: a client that stops reading is cut at `writeTimeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_http1_write_timeout_cuts_a_slow_reading_client() {
    let backend = RecordingBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let proxy = start("writeTimeout: 1s", &backend.url(), Some(&pki)).await;
    let mut tls = pki.connect(proxy.addr("web"), &[b"http/1.1"]).await;
    let started = Instant::now();
    let request =
        format!("GET /big HTTP/1.1\r\nHost: secure.test\r\nX-Body-Bytes: {BIG_BODY}\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    assert!(
        received.len() < BIG_BODY,
        "{} of {BIG_BODY} bytes despite writeTimeout",
        received.len()
    );
    // Cut at the deadline, while the client was not reading yet.
    let aborted = backend.wait_aborted("/big", Duration::from_secs(1)).await;
    assert_between(aborted - started, 800, 2400, "upstream abort");
}

/// HTTP/2 over TLS (curl): the timeouts apply per stream. A stalled upload is cut at
/// `readTimeout`; a slow backend at `writeTimeout` resets the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl"]
async fn tls_http2_read_and_write_timeouts() {
    let backend = RecordingBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let proxy = start(
        "readTimeout: 1s\n        writeTimeout: 2s",
        &backend.url(),
        Some(&pki),
    )
    .await;
    let port = proxy.port("web");

    // An upload from a pipe that sends two bytes and then stalls.
    let started = Instant::now();
    let mut curl = curl_h2(&pki, port, "/stalled-h2")
        .args(["-X", "POST", "-T", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = curl.stdin.take().unwrap();
    stdin.write_all(b"ab").await.unwrap();
    stdin.flush().await.unwrap();
    // curl notices the answer only once its upload ends: end it after the deadline.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        drop(stdin);
    });
    let output = tokio::time::timeout(ANSWER_WAIT, curl.wait_with_output())
        .await
        .expect("curl did not finish")
        .unwrap();
    let code = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !proxy.kind().is_traefik() {
        assert_eq!(code, "408", "{output:?}");
    } else {
        assert!(["504", "499"].contains(&code.as_str()), "{output:?}");
    }
    let aborted = backend
        .wait_aborted("/stalled-h2", Duration::from_secs(3))
        .await;
    assert_between(
        aborted - started,
        800,
        2400,
        "upstream abort of a stalled upload",
    );

    let started = Instant::now();
    let output = curl_h2(&pki, port, "/slow")
        .args(["-H", "X-Delay-Ms: 4000"])
        .output();
    let output = tokio::time::timeout(ANSWER_WAIT, output)
        .await
        .expect("curl did not finish")
        .unwrap();
    // curl: "HTTP/2 stream was not closed cleanly" (the stream was reset), no status.
    assert_eq!(output.status.code(), Some(92), "{output:?}");
    assert_between(started.elapsed(), 1800, 3500, "reset at writeTimeout");

    let output = curl_h2(&pki, port, "/slow")
        .args(["-H", "X-Delay-Ms: 1300"])
        .output();
    let output = tokio::time::timeout(ANSWER_WAIT, output)
        .await
        .expect("curl did not finish")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "200");
}

// ---------------------------------------------------------------------------------------------
// Helpers

const BIG_BODY: usize = 32 * 1024 * 1024;

/// Viaduct answers a body cut by `readTimeout` with 408 (see docs/decisions.md); Traefik gives
/// 504 (the body read timed out) or 499 (the read's failure cancelled the request first).
fn assert_cut_body_answer(proxy: &ProxyUnderTest, status: u16) {
    if proxy.kind().is_traefik() {
        assert!(status == 504 || status == 499, "status {status}");
    } else {
        assert_eq!(status, 408);
    }
}

fn assert_between(elapsed: Duration, min_ms: u64, max_ms: u64, what: &str) {
    assert!(
        elapsed >= Duration::from_millis(min_ms) && elapsed <= Duration::from_millis(max_ms),
        "{what} after {elapsed:?}, expected {min_ms}..{max_ms} ms"
    );
}

fn kind() -> ProxyKind {
    ProxyKind::under_test(env!("CARGO_BIN_EXE_viaduct"))
}

/// The proxy with entry point `web` and `timeouts` (lines under `respondingTimeouts`), routing
/// everything to `backend`; waits until a request is routed.
async fn start(timeouts: &str, backend: &str, pki: Option<&Pki>) -> ProxyUnderTest {
    let responding = if timeouts.is_empty() {
        String::new()
    } else {
        format!("    transport:\n      respondingTimeouts:\n        {timeouts}\n")
    };
    let static_yaml = format!(
        r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: DEBUG
entryPoints:
  web:
    address: "{{{{addr:web}}}}"
{responding}providers:
  providersThrottleDuration: 100ms
  file:
    filename: "{{{{dynamic_file}}}}"
    watch: true
"#
    );
    let mut dynamic = ROUTES.to_string();
    if let Some(pki) = pki {
        dynamic.push_str(&format!(
            "tls:\n  certificates:\n    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
            pki.cert_file, pki.key_file
        ));
    }
    let proxy = Launch::new(kind())
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
async fn readable_now(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    // `timeout` polls the peek once before looking at its (zero) deadline.
    tokio::time::timeout(Duration::ZERO, stream.peek(&mut byte))
        .await
        .is_ok()
}

/// Reads until the peer closes (EOF or reset) or `limit` passes.
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> Vec<u8> {
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

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Asks for `size` bytes, reads nothing for 2.5 s, then reads as fast as it can: returns the
/// number of bytes received and whether the whole response came.
async fn slow_read(addr: SocketAddr, size: usize) -> (usize, bool) {
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
struct RecordingBackend {
    addr: SocketAddr,
    aborted: Arc<Mutex<Vec<(String, Instant)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingBackend {
    async fn start() -> Self {
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

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until the proxy abandoned the request for `path` mid-body; returns when
    /// it did.
    async fn wait_aborted(&self, path: &str, limit: Duration) -> Instant {
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
struct Pki {
    cert_file: String,
    key_file: String,
    client: Arc<rustls::ClientConfig>,
}

impl Pki {
    fn new(dir: &std::path::Path) -> Self {
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

    async fn connect(
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
fn curl_h2(pki: &Pki, port: u16, path: &str) -> tokio::process::Command {
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
