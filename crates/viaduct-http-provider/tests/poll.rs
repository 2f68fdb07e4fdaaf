//! The HTTP provider against a real local server: plain HTTP and HTTPS, what it sends, what it
//! accepts and what it refuses.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use viaduct_config::static_config::{ClientTls, HttpProvider as Options};
use viaduct_config::GoDuration;
use viaduct_http_provider::{HttpProvider, HttpProviderError};
use viaduct_testkit::ConfigServer;

const ROUTES: &str = "http:\n  routers:\n    api:\n      rule: \"Host(`api.test`)\"\n      service: api\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:9\"\n";

/// The provider's options for `server`'s `/config`, polled every 100 ms.
fn polling(server: &ConfigServer) -> Options {
    Options {
        endpoint: server.url("/config"),
        poll_interval: GoDuration::from_millis(100),
        ..Options::default()
    }
}

async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> ConfigServer {
    ConfigServer::start(ROUTES, tls).await.unwrap()
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
    let server = start(None).await;
    let mut options = polling(&server);
    options
        .headers
        .insert("Authorization".into(), "Bearer token-1".into());
    let provider = HttpProvider::new(&options).unwrap();

    let config = provider.fetch().await.unwrap();
    assert_eq!(routers(&config), ["api"]);
    let head = server.heads()[0].to_ascii_lowercase();
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
    let server = start(None).await;
    let mut options = polling(&server);
    options.max_response_body_size = 64;
    options.poll_timeout = GoDuration::from_millis(300);
    let provider = HttpProvider::new(&options).unwrap();
    let endpoint = server.url("/config");

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
    server.set_delay(Duration::from_secs(2));
    let err = provider.fetch().await.unwrap_err();
    assert!(matches!(err, HttpProviderError::Timeout { .. }), "{err}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut options = polling(&server);
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
    let server = start(None).await;
    let provider = HttpProvider::new(&polling(&server)).unwrap();
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
    assert!(server.heads().len() >= 6, "it kept polling");

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
    let server = start(Some(acceptor)).await;

    let err = HttpProvider::new(&polling(&server))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("certificate"),
        "an unknown CA is refused: {err}"
    );

    let mut trusted = polling(&server);
    trusted.tls = Some(ClientTls {
        ca: Some(ca),
        ..ClientTls::default()
    });
    assert_eq!(
        routers(&HttpProvider::new(&trusted).unwrap().fetch().await.unwrap()),
        ["api"]
    );

    let mut insecure = polling(&server);
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
