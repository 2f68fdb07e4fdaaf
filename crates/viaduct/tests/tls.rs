//! HTTPS: entry point redirections, TLS routers served only over TLS, certificates chosen by
//! SNI, ALPN, and certificates replaced on reload.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use viaduct_testkit::{EchoBackend, HttpClient, RawConnection, RequestSpec};

fn two_entry_points(redirect: &str) -> String {
    format!(
        r#"log:
  level: DEBUG
entryPoints:
  web:
    address: "{{{{addr:web}}}}"
{redirect}
  websecure:
    address: "{{{{addr:websecure}}}}"
providers:
  providersThrottleDuration: 100ms
  file:
    filename: "{{{{dynamic_file}}}}"
"#
    )
}

const ROUTES: &str = concat!(
    r#"
http:
  routers:
    plain:
      rule: "Host(`plain.test`)"
      service: echo
    secure:
      rule: "Host(`secure.test`)"
      service: echo
      tls: {}
"#,
    echo_service!()
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_point_redirection_keeps_host_path_and_query() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let redirect = "    http:\n      redirections:\n        entryPoint:\n          to: websecure\n          scheme: https";
    let proxy =
        common::start_with(&two_entry_points(redirect), ROUTES, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let spec = RequestSpec::get(&format!("{}/a/b?c=d", proxy.url("web")))
        .header("host", "plain.test:8000");
    let reply = common::wait_reply(&proxy, &client, spec, |r| r.status != 404).await;
    assert_eq!(reply.status, 301);
    let location = reply.header("location").unwrap();
    assert_eq!(
        location,
        format!("https://plain.test:{}/a/b?c=d", proxy.port("websecure"))
    );

    let response = RawConnection::exchange(
        proxy.addr("web"),
        b"POST /form HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 308, "non-GET methods keep their method");
    assert_eq!(
        echo.hits(),
        0,
        "nothing reaches the backend from a redirecting entry point"
    );
}

// ---- TLS termination ----------------------------------------------------------------------

use std::sync::Arc;

use common::echo_service;
use common::tls::certificate;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_upstream::skip_verification;

struct TlsAnswer {
    status: u16,
    peer_certificate: Vec<u8>,
    alpn: Option<Vec<u8>>,
}

fn client_config(alpn: &[&[u8]], tls12_only: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(skip_verification(provider))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// One HTTP/1.1 GET over a fresh TLS connection with `sni`.
async fn tls_get(
    addr: std::net::SocketAddr,
    sni: &str,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsAnswer, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let mut tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let (_, session) = tls.get_ref();
    let peer_certificate = session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    Ok(TlsAnswer {
        status,
        peer_certificate,
        alpn,
    })
}

/// Polls a TLS GET for `name` (used as SNI and Host) until `accept` holds, bounded; each attempt
/// uses the client `config()` returns. Give each attempt a fresh client: one that resumes the
/// session of an attempt made before the configuration was applied keeps the certificate it saw
/// then (sessions outlive reloads on purpose, see docs/decisions.md).
async fn wait_tls(
    proxy: &viaduct_testkit::ProxyUnderTest,
    what: &str,
    name: &str,
    config: impl Fn() -> Arc<rustls::ClientConfig>,
    accept: impl Fn(&TlsAnswer) -> bool,
) -> TlsAnswer {
    let addr = proxy.addr("web");
    let accept = &accept;
    proxy
        .wait_for(what, common::ROUTING_TIMEOUT, || {
            let config = config();
            async move {
                // An answer that does not satisfy `accept` is reported as the last error, so a
                // timeout says what was seen instead.
                match tls_get(addr, name, name, config).await {
                    Ok(answer) if accept(&answer) => Ok(Some(answer)),
                    Ok(answer) => Err(format!(
                        "status {}, certificate of {} bytes, ALPN {:?}",
                        answer.status,
                        answer.peer_certificate.len(),
                        answer.alpn
                    )),
                    Err(e) => Err(e),
                }
            }
        })
        .await
        .unwrap()
}

/// Waits until the router for `secure.test` answers 200 over TLS 1.2 or 1.3 with HTTP/1.1.
async fn wait_secure_router(proxy: &viaduct_testkit::ProxyUnderTest) -> TlsAnswer {
    wait_tls(
        proxy,
        "the TLS router",
        "secure.test",
        || client_config(&[b"http/1.1"], false),
        |a| a.status == 200,
    )
    .await
}

fn tls_routes(certs: &[(String, String)], options: &str) -> String {
    let mut yaml = ROUTES.to_string();
    yaml.push_str("tls:\n  certificates:\n");
    for (cert, key) in certs {
        yaml.push_str(&format!(
            "    - certFile: \"{cert}\"\n      keyFile: \"{key}\"\n"
        ));
    }
    yaml.push_str(options);
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_routers_answer_over_tls_with_the_certificate_for_the_sni() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path(), "secure", &["secure.test"]);
    let (wcert, wkey, wder) = certificate(dir.path(), "wild", &["*.wild.test"]);
    let dynamic = tls_routes(&[(cert, key), (wcert, wkey)], "");
    let proxy = common::start(&dynamic, &[("echo", echo.url())]).await;
    let addr = proxy.addr("web");
    let config = client_config(&[b"h2", b"http/1.1"], false);

    // The handshake and the request read the live configuration at different moments: one
    // attempt can shake hands just before the configuration is applied (default certificate)
    // and be routed just after (200). Wait for both to come from the configuration.
    let answer = wait_tls(
        &proxy,
        "the TLS router with the certificate for secure.test",
        "secure.test",
        || client_config(&[b"h2", b"http/1.1"], false),
        |a| a.status == 200 && a.peer_certificate == der,
    )
    .await;
    assert_eq!(
        answer.alpn.as_deref(),
        Some(&b"h2"[..]),
        "HTTP/2 offered and chosen by ALPN"
    );

    let wild = tls_get(
        addr,
        "a.wild.test",
        "secure.test",
        client_config(&[b"http/1.1"], false),
    )
    .await
    .unwrap();
    assert_eq!(
        wild.peer_certificate, wder,
        "the wildcard certificate for a.wild.test"
    );
    assert_eq!(wild.status, 200);

    let other = tls_get(addr, "unknown.test", "secure.test", config.clone())
        .await
        .unwrap();
    assert_ne!(other.peer_certificate, der);
    assert_ne!(other.peer_certificate, wder);
    assert!(
        !other.peer_certificate.is_empty(),
        "the generated default certificate"
    );

    // TLS routers answer only TLS; plain routers only plain HTTP.
    let client = HttpClient::http1();
    let plain_to_tls = client
        .get_host(&proxy.url("web"), "secure.test")
        .await
        .unwrap();
    assert_eq!(plain_to_tls.status, 404);
    let tls_to_plain = tls_get(addr, "secure.test", "plain.test", config)
        .await
        .unwrap();
    assert_eq!(tls_to_plain.status, 404);
    let plain = client
        .get_host(&proxy.url("web"), "plain.test")
        .await
        .unwrap();
    assert_eq!(plain.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_sni_strict_and_minimum_version() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "secure", &["secure.test"]);
    let options =
        "  options:\n    default:\n      sniStrict: true\n      minVersion: VersionTLS13\n";
    let proxy = common::start(
        &tls_routes(&[(cert, key)], options),
        &[("echo", echo.url())],
    )
    .await;
    let addr = proxy.addr("web");
    let config = client_config(&[b"http/1.1"], false);
    wait_secure_router(&proxy).await;
    assert!(
        tls_get(addr, "unknown.test", "secure.test", config)
            .await
            .is_err(),
        "sniStrict refuses a name no certificate covers"
    );
    assert!(
        tls_get(
            addr,
            "secure.test",
            "secure.test",
            client_config(&[b"http/1.1"], true)
        )
        .await
        .is_err(),
        "a TLS 1.2-only client is refused when minVersion is TLS 1.3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_replaced_on_reload_without_dropping_connections() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = certificate(dir.path(), "one", &["secure.test"]);
    let proxy = common::start(&tls_routes(&[(cert, key)], ""), &[("echo", echo.url())]).await;
    let addr = proxy.addr("web");
    // A fresh client per attempt: a client that resumes the session of an attempt made before
    // the configuration was applied would keep seeing the default certificate it resumed.
    wait_tls(
        &proxy,
        "the first certificate",
        "secure.test",
        || client_config(&[b"http/1.1"], false),
        |a| a.peer_certificate == first,
    )
    .await;
    let config = client_config(&[b"http/1.1"], false);

    // A connection opened before the reload keeps working after it.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut open = tokio_rustls::TlsConnector::from(config.clone())
        .connect(ServerName::try_from("secure.test").unwrap(), tcp)
        .await
        .unwrap();

    let (cert, key, second) = certificate(dir.path(), "two", &["secure.test"]);
    proxy
        .write_dynamic(&tls_routes(&[(cert, key)], ""))
        .unwrap();
    wait_tls(
        &proxy,
        "the new certificate",
        "secure.test",
        || client_config(&[b"http/1.1"], false),
        |a| a.peer_certificate == second,
    )
    .await;

    open.write_all(b"GET / HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut response)).await;
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

/// A client that starts a TLS handshake and stalls is disconnected (bounded by `readTimeout`),
/// so it cannot hold a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "secure", &["secure.test"]);
    let static_yaml =
        common::static_config("    transport:\n      respondingTimeouts:\n        readTimeout: 1s");
    let proxy = common::start_with(
        &static_yaml,
        &tls_routes(&[(cert, key)], ""),
        &[("echo", echo.url())],
    )
    .await;
    let mut stalled = tokio::net::TcpStream::connect(proxy.addr("web"))
        .await
        .unwrap();
    // The first bytes of a TLS record header, then nothing.
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the proxy should close the connection"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
}

/// HTTP/2 over TLS with a real HTTP/2 client (curl), negotiated by ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl"]
async fn curl_speaks_http2_over_tls() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "secure", &["secure.test"]);
    let proxy = common::start(&tls_routes(&[(cert, key)], ""), &[("echo", echo.url())]).await;
    let port = proxy.port("web");
    let resolve = format!("secure.test:{port}:127.0.0.1");
    let url = format!("https://secure.test:{port}/h2");
    let output = proxy
        .wait_for("curl over HTTP/2", common::ROUTING_TIMEOUT, || {
            let (resolve, url) = (resolve.clone(), url.clone());
            async move {
                let out = tokio::process::Command::new("curl")
                    .args([
                        "-sk",
                        "--http2",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_version} %{http_code}",
                        "--resolve",
                    ])
                    .arg(&resolve)
                    .arg(&url)
                    .output()
                    .await
                    .map_err(|e| format!("running curl: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                Ok((text == "2 200").then_some(text))
            }
        })
        .await
        .unwrap();
    assert_eq!(output, "2 200");
    assert_eq!(echo.received().pop().unwrap().uri, "/h2");
}

/// A private CA and a client certificate it signed, for mutual TLS.
struct ClientPki {
    ca_pem: String,
    client_cert: CertificateDer<'static>,
    client_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn client_pki() -> ClientPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test client CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    ClientPki {
        ca_pem: ca_cert.pem(),
        client_cert: CertificateDer::from(cert.der().to_vec()),
        client_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_only_clients_the_ca_signed() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "secure", &["secure.test"]);
    let pki = client_pki();
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let dynamic = tls_routes(
        &[(cert, key)],
        &format!(
            "  options:\n    mtls:\n      clientAuth:\n        caFiles: [\"{}\"]\n        clientAuthType: RequireAndVerifyClientCert\n",
            ca_file.display()
        ),
    )
    .replace("      tls: {}\n", "      tls:\n        options: mtls\n");
    let proxy = common::start(&dynamic, &[("echo", echo.url())]).await;
    let addr = proxy.addr("web");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let with_cert = {
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(skip_verification(provider.clone()))
            .with_client_auth_cert(vec![pki.client_cert.clone()], pki.client_key.clone_key())
            .unwrap();
        Arc::new(config)
    };
    wait_tls(
        &proxy,
        "mTLS with a signed client certificate",
        "secure.test",
        || with_cert.clone(),
        |a| a.status == 200,
    )
    .await;
    let without = tls_get(
        addr,
        "secure.test",
        "secure.test",
        client_config(&[b"http/1.1"], false),
    )
    .await;
    assert!(
        without.is_err() || without.is_ok_and(|a| a.status != 200),
        "a client without a certificate is refused"
    );
}

/// `entryPoints.X.http.tls`: every router of the entry point is served over TLS, without a
/// `tls` section of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_point_tls_applies_to_its_routers() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path(), "plain", &["plain.test"]);
    let static_yaml = common::static_config("    http:\n      tls: {}");
    let proxy = common::start_with(
        &static_yaml,
        &tls_routes(&[(cert, key)], ""),
        &[("echo", echo.url())],
    )
    .await;
    let answer = wait_tls(
        &proxy,
        "the entry point's TLS with the certificate for plain.test",
        "plain.test",
        || client_config(&[b"http/1.1"], false),
        // Both from the applied configuration (see the SNI test above).
        |a| a.status == 200 && a.peer_certificate == der,
    )
    .await;
    assert_eq!(answer.status, 200);
    let plain = HttpClient::http1()
        .get_host(&proxy.url("web"), "plain.test")
        .await
        .unwrap();
    assert_eq!(
        plain.status, 404,
        "on a TLS entry point, plain HTTP finds no router"
    );
}

/// The server's preference decides the cipher suite, as in Go: a client that lists
/// AES-256-GCM first still gets AES-128-GCM (TLS 1.3 and 1.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_chooses_the_cipher_suite_as_go_does() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "secure", &["secure.test"]);
    let proxy = common::start(&tls_routes(&[(cert, key)], ""), &[("echo", echo.url())]).await;
    wait_secure_router(&proxy).await;
    use rustls::crypto::ring::cipher_suite as suites;
    for (version, offered, expected) in [
        (
            &rustls::version::TLS13,
            vec![
                suites::TLS13_AES_256_GCM_SHA384,
                suites::TLS13_AES_128_GCM_SHA256,
            ],
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
        ),
        (
            &rustls::version::TLS12,
            vec![
                suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ],
            rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
    ] {
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: offered,
            ..rustls::crypto::ring::default_provider()
        });
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(skip_verification(provider))
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(proxy.addr("web"))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("secure.test").unwrap(), tcp)
            .await
            .unwrap();
        let chosen = tls.get_ref().1.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(chosen, expected, "{version:?}");
    }
}
