//! `respondingTimeouts.readTimeout` over the whole request (head and body) and `writeTimeout`
//! over the response, on plain HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS. Traefik's are
//! Go's `http.Server` timeouts; every test also runs against Traefik
//! (`VIADUCT_E2E_PROXY=traefik`), and assertions where Viaduct deliberately differs are guarded.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod timeouts_support;

use std::time::{Duration, Instant};

use timeouts_support::{
    assert_between, assert_cut_body_answer, curl_h2, read_until_closed, readable_now, slow_read,
    start, start_with, status_of, Pki, RecordingBackend, ANSWER_WAIT, BIG_BODY,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use viaduct_testkit::{EchoBackend, RawConnection};

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

/// The access log records what the client of a cut body gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_by_read_timeout_is_logged_with_its_status() {
    let backend = RecordingBackend::start().await;
    let access_log = "accessLog:\n  filePath: \"{{dir}}/access.json\"\n  format: json\n";
    let proxy = start_with("readTimeout: 1s", access_log, &backend.url(), None).await;
    let mut conn = RawConnection::connect(proxy.addr("web")).await.unwrap();
    conn.send(b"POST /logged HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nab")
        .await
        .unwrap();
    let response = conn.read_response(ANSWER_WAIT).await.unwrap();
    assert_cut_body_answer(&proxy, response.status);

    let path = proxy.dir().join("access.json");
    let line = proxy
        .wait_for("the access log line", Duration::from_secs(5), || {
            let path = path.clone();
            async move {
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                Ok(text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .find(|l| l["RequestPath"] == "/logged"))
            }
        })
        .await
        .unwrap();
    let logged = line["DownstreamStatus"].as_u64().unwrap();
    if proxy.kind().is_traefik() {
        assert!(logged == 504 || logged == 499, "{line}");
    } else {
        assert_eq!(logged, u64::from(response.status), "{line}");
    }
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
