//! Test servers and clients for the TCP and UDP suites: an echoing TCP backend that records
//! what it received (plain or TLS), a TLS client that reports the certificate it was shown,
//! and a UDP echo backend.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::AbortHandle;

/// Entry points `names` (each on `{{addr:NAME}}`), `extra` YAML appended to every one of them
/// (6-space indent), and the watched file provider.
pub fn static_config(names: &[&str], extra: &str) -> String {
    let mut yaml = String::from(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nlog:\n  level: DEBUG\nentryPoints:\n",
    );
    for name in names {
        yaml.push_str(&format!(
            "  {name}:\n    address: \"{{{{addr:{name}}}}}\"\n{extra}\n"
        ));
    }
    yaml.push_str(
        "providers:\n  providersThrottleDuration: 100ms\n  file:\n    filename: \"{{dynamic_file}}\"\n    watch: true\n",
    );
    yaml
}

/// Bounds every exchange in these suites.
/// The HTTP router for `web.test` to the service `http` on the server `{{http}}`, for entry
/// points shared by HTTP and TCP routers.
pub const WEB_ROUTE: &str = r#"
http:
  routers:
    web:
      rule: "Host(`web.test`)"
      service: http
  services:
    http:
      loadBalancer:
        servers:
          - url: "{{http}}"
"#;

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP backend that echoes every byte, and when the client half-closes, writes `|NAME` and
/// closes. It records the bytes of each connection, PROXY header included.
pub struct TcpBackend {
    pub name: String,
    pub addr: SocketAddr,
    /// DER of the certificate a TLS backend serves.
    pub certificate: Option<Vec<u8>>,
    /// The same certificate as PEM (a CA a client can trust).
    pub certificate_pem: Option<String>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    accept_loop: AbortHandle,
}

impl TcpBackend {
    pub async fn plain(name: &str) -> TcpBackend {
        Self::start(name, None).await
    }

    /// A backend that terminates TLS itself with a self-signed certificate for `names`.
    pub async fn tls(name: &str, names: &[&str]) -> TcpBackend {
        let certified = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        let der = certified.cert.der().to_vec();
        let pem = certified.cert.pem();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(der.clone())], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let mut backend = Self::start(name, Some(acceptor)).await;
        backend.certificate = Some(der);
        backend.certificate_pem = Some(pem);
        backend
    }

    async fn start(name: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> TcpBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (tag, log) = (name.to_string(), received.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (tag, log, tls) = (tag.clone(), log.clone(), tls.clone());
                tokio::spawn(async move {
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.push(Vec::new());
                        log.len() - 1
                    };
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                echo(stream, &tag, &log, index).await;
                            }
                        }
                        None => echo(stream, &tag, &log, index).await,
                    }
                });
            }
        });
        TcpBackend {
            name: name.to_string(),
            addr,
            certificate: None,
            certificate_pem: None,
            received,
            accept_loop: task.abort_handle(),
        }
    }

    /// The bytes received on each connection so far, in accept order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    name: &str,
    log: &Mutex<Vec<Vec<u8>>>,
    index: usize,
) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log.lock().unwrap()[index].extend_from_slice(&buf[..n]);
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = stream.write_all(format!("|{name}").as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Sends `payload`, half-closes, and reads everything until the other side closes.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    payload: &[u8],
) -> std::io::Result<String> {
    let work = async {
        stream.write_all(payload).await?;
        stream.shutdown().await?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(IO_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Connects to `addr` from the local address `from` (any `127.x.y.z` works on Linux).
pub async fn connect_from(from: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(addr).await
}

/// A plain exchange through `addr`: the echo and the backend's name, or the error.
pub async fn plain_exchange(addr: SocketAddr, payload: &[u8]) -> std::io::Result<String> {
    let stream = TcpStream::connect(addr).await?;
    exchange(stream, payload).await
}

/// What a TLS client saw.
pub struct TlsExchange {
    pub certificate: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
    /// The echo, or `error: …` when the exchange after the handshake failed.
    pub answer: String,
}

/// A TLS connection to `addr` with `sni` (none when empty) offering `alpn`, then an exchange.
pub async fn tls_exchange(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&str],
    payload: &[u8],
) -> std::io::Result<TlsExchange> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(viaduct_upstream::skip_verification(provider))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    if sni.is_empty() {
        config.enable_sni = false;
    }
    let name = if sni.is_empty() {
        "unnamed.invalid"
    } else {
        sni
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let work = async {
        let tcp = TcpStream::connect(addr).await?;
        let tls = connector
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await?;
        let session = tls.get_ref().1;
        let certificate = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let alpn = session.alpn_protocol().map(|p| p.to_vec());
        // A relay that cuts the end of the stream still shows which server answered.
        let answer = exchange(tls, payload)
            .await
            .unwrap_or_else(|e| format!("error: {e}"));
        Ok(TlsExchange {
            certificate,
            alpn,
            answer,
        })
    };
    tokio::time::timeout(IO_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Waits until `payload` sent to `addr` comes back as `payload|backend` from the backend named
/// `backend` ([`plain_exchange`]), and returns that answer.
pub async fn eventually_echoed(
    what: &str,
    addr: SocketAddr,
    payload: &str,
    backend: &str,
) -> String {
    let expected = format!("{payload}|{backend}");
    eventually(what, || async {
        plain_exchange(addr, payload.as_bytes())
            .await
            .ok()
            .filter(|a| *a == expected)
    })
    .await
}

/// Retries `attempt` until it returns `Some` (the configuration may still be loading).
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A UDP backend answering each datagram with `NAME:PEER_PORT:payload`.
pub struct UdpBackend {
    pub addr: SocketAddr,
    task: AbortHandle,
}

impl UdpBackend {
    pub async fn start(name: &str) -> UdpBackend {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let name = name.to_string();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let mut answer = format!("{name}:{}:", peer.port()).into_bytes();
                answer.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&answer, peer).await;
            }
        });
        UdpBackend {
            addr,
            task: task.abort_handle(),
        }
    }
}

impl Drop for UdpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
