//! Pebble, Let's Encrypt's test CA, and its fake DNS (pebble-challtestsrv) on free loopback ports, for the ACME
//! tests. Every A query answers 127.0.0.1, so Pebble validates HTTP-01 and TLS-ALPN-01 against the proxy's ports.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use viaduct_testkit::free_port;

pub struct Pebble {
    dir: tempfile::TempDir,
    pebble: Child,
    challtestsrv: Child,
    pub acme_port: u16,
    pub management_port: u16,
    /// The port Pebble validates HTTP-01 on: the proxy's plain entry point.
    pub http_port: u16,
    /// The port Pebble validates TLS-ALPN-01 on: the proxy's TLS entry point.
    pub tls_port: u16,
    /// challtestsrv's HTTP API (`/set-txt`, `/clear-txt`).
    pub dns_management_port: u16,
    /// challtestsrv's DNS server (UDP).
    pub dns_port: u16,
}

#[derive(Default)]
pub struct PebbleOptions {
    /// Pebble's `PEBBLE_WFE_NONCEREJECT` (percent of nonces rejected); its default is 5.
    pub nonce_reject: u32,
    /// `certificateValidityPeriod` in seconds; Pebble's default (5 years) when `None`.
    pub validity: Option<u64>,
    /// External account binding required, with this key id and base64url HMAC key.
    pub eab: Option<(String, String)>,
    /// `PEBBLE_ALTERNATE_ROOTS`: roots besides the default one, each offered as an alternate chain (`/roots/<n>`).
    pub alternate_roots: u32,
}

impl Pebble {
    pub async fn start(options: PebbleOptions) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        write_https_certificate(dir.path());
        let (acme_port, management_port) = (free_port().unwrap(), free_port().unwrap());
        let (http_port, tls_port) = (free_port().unwrap(), free_port().unwrap());
        let (dns_port, dns_management_port) = (free_port().unwrap(), free_port().unwrap());
        let mut config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": "cert.pem",
            "privateKey": "key.pem",
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some((kid, key)) = &options.eab {
            config["pebble"]["externalAccountBindingRequired"] = true.into();
            config["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
        }
        if let Some(validity) = options.validity {
            config["pebble"]["certificateValidityPeriod"] = validity.into();
        }
        std::fs::write(dir.path().join("pebble-config.json"), config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management_port}")])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv runs (apt-get install pebble)");
        let pebble = Command::new("pebble")
            .current_dir(dir.path())
            .args(["-config", "pebble-config.json"])
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", options.nonce_reject.to_string())
            .env(
                "PEBBLE_ALTERNATE_ROOTS",
                options.alternate_roots.to_string(),
            )
            .stdin(Stdio::null())
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble runs (apt-get install pebble)");
        let started = Pebble {
            dir,
            pebble,
            challtestsrv,
            acme_port,
            management_port,
            http_port,
            tls_port,
            dns_management_port,
            dns_port,
        };
        for port in [acme_port, management_port, dns_management_port] {
            viaduct_testkit::wait_until(
                "Pebble to listen",
                Duration::from_secs(10),
                || async move {
                    match TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(_) => Ok(Some(())),
                        Err(e) => Err(e.to_string()),
                    }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("pebble port {port}: {e}"));
        }
        started
    }

    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The CA Pebble's own HTTPS certificate chains to (what `caCertificates` names).
    pub fn https_ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The root issued certificates chain to by default (new on every Pebble start).
    pub fn issuing_root(&self) -> CertificateDer<'static> {
        self.root(0)
    }

    /// Root `index`: 0 is the default chain's, the others the alternate chains' (`alternate_roots`).
    pub fn root(&self, index: u32) -> CertificateDer<'static> {
        let output = Command::new("curl")
            .args([
                "-sSk",
                &format!("https://127.0.0.1:{}/roots/{index}", self.management_port),
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "fetching Pebble's root {index}");
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(&output.stdout).unwrap()
    }

    /// A script for lego's `exec` DNS provider that publishes TXT records through challtestsrv.
    pub fn dns_hook(&self) -> PathBuf {
        let path = self.dir.path().join("dns-hook.sh");
        let api = format!("http://127.0.0.1:{}", self.dns_management_port);
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n  present) curl -sS -X POST -d '{{\"host\":\"'\"$2\"'\",\"value\":\"'\"$3\"'\"}}' {api}/set-txt ;;\n  cleanup) curl -sS -X POST -d '{{\"host\":\"'\"$2\"'\"}}' {api}/clear-txt ;;\nesac\n"
        );
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Pebble's log, to see what it decided when a test fails.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.challtestsrv] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Pebble's HTTPS certificate for 127.0.0.1/localhost, and the CA that signs it (`ca.pem`).
fn write_https_certificate(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pebble-test-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// Connects to `port` with SNI `name`, verifying the chain against `root`; on success sends a GET and returns the
/// leaf certificate and the response's status line.
pub async fn verified_get(
    port: u16,
    name: &str,
    root: &CertificateDer<'static>,
) -> Result<(CertificateDer<'static>, String), String> {
    let mut tls = connect(port, name, root).await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let request = format!("GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or("").to_string();
    Ok((leaf, status))
}

/// The chain served for SNI `name` on `port` (leaf first), verified against `root`.
pub async fn served_chain(
    port: u16,
    name: &str,
    root: &CertificateDer<'static>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let tls = connect(port, name, root).await?;
    Ok(tls.get_ref().1.peer_certificates().unwrap().to_vec())
}

async fn connect(
    port: u16,
    name: &str,
    root: &CertificateDer<'static>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), connector.connect(server_name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| e.to_string())
}

/// Waits (bounded) until `name` is served on `port` with a certificate chaining to `root`.
pub async fn wait_certificate(
    port: u16,
    name: &str,
    root: &CertificateDer<'static>,
    timeout: Duration,
) -> (CertificateDer<'static>, String) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match verified_get(port, name, root).await {
            Ok(served) => return served,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("{name}: no certificate chaining to Pebble's root within {timeout:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}
