//! The HTTP provider against a real local server: plain HTTP and HTTPS, what it sends, what it
//! accepts and what it refuses.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use viaduct_config::static_config::{ClientTls, HttpProvider as Options};
use viaduct_config::GoDuration;
use viaduct_http_provider::{HttpProvider, HttpProviderError};

const ROUTES: &str = "http:\n  routers:\n    api:\n      rule: \"Host(`api.test`)\"\n      service: api\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:9\"\n";

/// What the server answers, and the request heads it saw.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server {
            addr: listener.local_addr().unwrap(),
            reply: Arc::new(Mutex::new(Reply {
                status: 200,
                body: ROUTES.into(),
                delay: Duration::ZERO,
            })),
            heads: Arc::default(),
        };
        let state = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                state.answer(stream).await;
                            }
                        }
                        None => state.answer(stream).await,
                    }
                });
            }
        });
        server
    }

    async fn answer(&self, mut stream: impl AsyncRead + AsyncWrite + Unpin) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        self.heads
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        let reply = self.reply.lock().unwrap().clone();
        tokio::time::sleep(reply.delay).await;
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            reply.status,
            reply.body.len(),
            reply.body
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn set(&self, status: u16, body: &str) {
        let mut reply = self.reply.lock().unwrap();
        reply.status = status;
        reply.body = body.into();
    }

    fn options(&self, scheme: &str) -> Options {
        Options {
            endpoint: format!("{scheme}://127.0.0.1:{}/config", self.addr.port()),
            poll_interval: GoDuration::from_millis(100),
            ..Options::default()
        }
    }
}

async fn next(
    rx: &mut mpsc::Receiver<viaduct_providers::ProviderMessage>,
) -> viaduct_providers::ProviderMessage {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

fn routers(config: &viaduct_config::DynamicConfig) -> Vec<String> {
    config
        .http
        .as_ref()
        .map(|h| h.routers.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn fetches_yaml_or_json_with_the_configured_headers() {
    let server = Server::start(None).await;
    let mut options = server.options("http");
    options
        .headers
        .insert("Authorization".into(), "Bearer token-1".into());
    let provider = HttpProvider::new(&options).unwrap();

    let config = provider.fetch().await.unwrap();
    assert_eq!(routers(&config), ["api"]);
    let head = server.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /config http/1.1\r\n"), "{head}");
    assert!(head.contains("authorization: bearer token-1\r\n"), "{head}");

    server.set(
        200,
        r#"{"http": {"routers": {"json": {"rule": "Host(`j`)", "service": "s"}}}}"#,
    );
    assert_eq!(routers(&provider.fetch().await.unwrap()), ["json"]);
}

#[tokio::test]
async fn bad_answers_are_errors_that_name_the_endpoint_and_the_reason() {
    let server = Server::start(None).await;
    let mut options = server.options("http");
    options.max_response_body_size = 64;
    options.poll_timeout = GoDuration::from_millis(300);
    let provider = HttpProvider::new(&options).unwrap();
    let endpoint = format!("http://127.0.0.1:{}/config", server.addr.port());

    let err = provider.fetch().await.unwrap_err();
    assert!(
        matches!(err, HttpProviderError::TooLarge { limit: 64, .. }),
        "{err}"
    );

    server.set(503, "busy");
    let err = provider.fetch().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("GET {endpoint}: status 503 Service Unavailable, expected 200")
    );

    server.set(
        200,
        "http:\n  routers:\n    r:\n      rule: 5\n      nope: 1\n",
    );
    let err = provider.fetch().await.unwrap_err();
    assert!(matches!(err, HttpProviderError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");

    server.set(200, "http: {}\n");
    server.reply.lock().unwrap().delay = Duration::from_secs(2);
    let err = provider.fetch().await.unwrap_err();
    assert!(matches!(err, HttpProviderError::Timeout { .. }), "{err}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut options = server.options("http");
    options.endpoint = format!("http://127.0.0.1:{port}/");
    let err = HttpProvider::new(&options)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(err, HttpProviderError::Fetch { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[test]
fn bad_options_are_refused_with_their_key() {
    let cases = [
        (
            Options {
                endpoint: "ftp://x/".into(),
                ..Options::default()
            },
            "providers.http.endpoint",
        ),
        (Options::default(), "providers.http.endpoint"),
        (
            Options {
                endpoint: "http://x/".into(),
                poll_interval: GoDuration::ZERO,
                ..Options::default()
            },
            "providers.http.pollInterval",
        ),
        (
            Options {
                endpoint: "http://x/".into(),
                headers: [("bad header".to_string(), "v".to_string())].into(),
                ..Options::default()
            },
            "providers.http.headers.bad header",
        ),
        (
            Options {
                endpoint: "https://x/".into(),
                tls: Some(ClientTls {
                    ca: Some("/nonexistent/ca.pem".into()),
                    ..ClientTls::default()
                }),
                ..Options::default()
            },
            "providers.http.tls",
        ),
    ];
    for (options, needle) in cases {
        let err = HttpProvider::new(&options).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

#[tokio::test]
async fn polls_send_changes_only_and_keep_the_last_good_configuration() {
    let server = Server::start(None).await;
    let provider = HttpProvider::new(&server.options("http")).unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(provider.run(tx));

    let first = next(&mut rx).await;
    assert_eq!(first.provider, "http");
    assert_eq!(routers(&first.config), ["api"]);

    // Several polls of the same body, then failures: nothing is sent.
    tokio::time::sleep(Duration::from_millis(350)).await;
    server.set(500, "oops");
    tokio::time::sleep(Duration::from_millis(350)).await;
    server.set(200, "http: [not a map");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        rx.try_recv().is_err(),
        "an unchanged or bad answer was sent on"
    );
    assert!(server.heads.lock().unwrap().len() >= 6, "it kept polling");

    server.set(200, &ROUTES.replace("api", "v2"));
    assert_eq!(routers(&next(&mut rx).await.config), ["v2"]);

    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn certificates(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(viaduct_upstream::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        ca_path.display().to_string(),
    )
}

#[tokio::test]
async fn https_endpoints_are_verified_against_tls_ca_or_not_at_all() {
    let dir = tempfile_dir();
    let (acceptor, ca) = certificates(&dir);
    let server = Server::start(Some(acceptor)).await;

    let err = HttpProvider::new(&server.options("https"))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("certificate"),
        "an unknown CA is refused: {err}"
    );

    let mut trusted = server.options("https");
    trusted.tls = Some(ClientTls {
        ca: Some(ca),
        ..ClientTls::default()
    });
    assert_eq!(
        routers(&HttpProvider::new(&trusted).unwrap().fetch().await.unwrap()),
        ["api"]
    );

    let mut insecure = server.options("https");
    insecure.tls = Some(ClientTls {
        insecure_skip_verify: true,
        ..ClientTls::default()
    });
    assert_eq!(
        routers(&HttpProvider::new(&insecure).unwrap().fetch().await.unwrap()),
        ["api"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("viaduct-http-provider-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
