//! Test PKI (rcgen) and a handshake driver that serves exactly as the proxy does: peek the ClientHello with
//! `LazyConfigAcceptor`, ask the runtime for a config by SNI, finish or refuse.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, HandshakeKind, ProtocolVersion, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};
use viaduct_config::{TlsCertificate, TlsConfig};
use viaduct_tls::TlsRuntime;

/// A certificate and its key, as PEM and DER.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Leaf {
    /// An entry for `tls.certificates` with inline PEM.
    pub fn entry(&self) -> TlsCertificate {
        TlsCertificate {
            cert_file: self.cert_pem.clone(),
            key_file: self.key_pem.clone(),
            stores: Vec::new(),
        }
    }
}

/// A private certificate authority.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub cert_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            params,
            key,
            cert_pem: cert.pem(),
        }
    }

    pub fn server(&self, names: &[&str]) -> Leaf {
        self.sign(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client(&self, name: &str) -> Leaf {
        self.sign(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = params(names);
        params.extended_key_usages = vec![usage];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        leaf(cert, key)
    }
}

/// A self-signed leaf for `names`.
pub fn self_signed(names: &[&str]) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params(names).self_signed(&key).unwrap();
    leaf(cert, key)
}

/// A self-signed leaf for `names` that expired in 2001.
pub fn expired(names: &[&str]) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = params(names);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    leaf(cert, key)
}

/// A self-signed leaf with no SANs, only a common name.
pub fn common_name_only(cn: &str) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    leaf(cert, key)
}

fn params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params
}

fn leaf(cert: rcgen::Certificate, key: KeyPair) -> Leaf {
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// `tls.certificates` holding `leaves`.
pub fn config_with(leaves: &[&Leaf]) -> TlsConfig {
    TlsConfig {
        certificates: leaves.iter().map(|leaf| leaf.entry()).collect(),
        ..TlsConfig::default()
    }
}

/// How the test client connects.
#[derive(Clone)]
pub struct Client {
    /// `None` sends no SNI (the client connects by IP address).
    pub sni: Option<String>,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub suites: Option<Vec<SupportedCipherSuite>>,
    pub kx_groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    pub alpn: Vec<Vec<u8>>,
    pub client_cert: Option<Leaf>,
}

impl Client {
    pub fn sni(sni: &str) -> Client {
        Client {
            sni: Some(sni.to_string()),
            versions: rustls::DEFAULT_VERSIONS.to_vec(),
            suites: None,
            kx_groups: None,
            alpn: Vec::new(),
            client_cert: None,
        }
    }

    pub fn no_sni() -> Client {
        Client {
            sni: None,
            ..Client::sni("unused")
        }
    }

    /// A rustls client config; keep it to resume sessions across handshakes.
    pub fn config(&self) -> Arc<ClientConfig> {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(suites) = &self.suites {
            provider.cipher_suites = suites.clone();
        }
        if let Some(groups) = &self.kx_groups {
            provider.kx_groups = groups.clone();
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&self.versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert));
        let mut config = match &self.client_cert {
            Some(leaf) => builder
                .with_client_auth_cert(
                    vec![leaf.der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Arc::new(config)
    }
}

/// What one side saw of a completed handshake.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The certificate chain the other side presented.
    pub peer_certs: Vec<CertificateDer<'static>>,
    pub alpn: Option<Vec<u8>>,
    pub version: Option<ProtocolVersion>,
    pub suite: Option<SupportedCipherSuite>,
    pub kind: Option<HandshakeKind>,
}

/// Both sides of one connection attempt.
#[derive(Debug)]
pub struct Outcome {
    pub server: Result<Seen, String>,
    pub client: Result<Seen, String>,
}

impl Outcome {
    /// The client's view, panicking (with both sides' errors) unless both sides succeeded.
    pub fn ok(self) -> Seen {
        match (&self.server, &self.client) {
            (Ok(_), Ok(client)) => client.clone(),
            _ => panic!("handshake failed: {self:?}"),
        }
    }

    pub fn failed(&self) -> bool {
        self.server.is_err() || self.client.is_err()
    }

    /// The leaf certificate the client received.
    pub fn served_leaf(self) -> CertificateDer<'static> {
        self.ok().peer_certs[0].clone()
    }
}

/// Connects with a fresh client config.
pub async fn connect(runtime: &TlsRuntime, client: &Client) -> Outcome {
    connect_with(runtime, client, client.config()).await
}

/// Connects with `config` (reuse it to resume). The server writes "ok" once its handshake is complete, so a
/// client certificate rejected after the client considers the TLS 1.3 handshake done still shows as a failure.
pub async fn connect_with(
    runtime: &TlsRuntime,
    client: &Client,
    config: Arc<ClientConfig>,
) -> Outcome {
    drive(|sni| runtime.server_config(sni), client, config).await
}

/// Connects to a server that accepted the connection on the local address `local`.
pub async fn connect_at(runtime: &TlsRuntime, client: &Client, local: std::net::IpAddr) -> Outcome {
    drive(
        |sni| runtime.server_config_at(sni, local),
        client,
        client.config(),
    )
    .await
}

async fn drive(
    select: impl FnOnce(Option<&str>) -> Option<Arc<rustls::ServerConfig>>,
    client: &Client,
    config: Arc<ClientConfig>,
) -> Outcome {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = async move {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), server_io)
            .await
            .map_err(|err| format!("reading the ClientHello: {err}"))?;
        let sni = start.client_hello().server_name().map(str::to_string);
        let Some(config) = select(sni.as_deref()) else {
            return Err("refused: no server config".to_string());
        };
        let mut stream = start
            .into_stream(config)
            .await
            .map_err(|err| format!("server handshake: {err}"))?;
        stream
            .write_all(b"ok")
            .await
            .map_err(|err| err.to_string())?;
        stream.shutdown().await.map_err(|err| err.to_string())?;
        let (_, conn) = stream.get_ref();
        Ok(Seen {
            peer_certs: conn
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
            suite: conn.negotiated_cipher_suite(),
            kind: conn.handshake_kind(),
        })
    };
    let server_name = match &client.sni {
        Some(sni) => ServerName::try_from(sni.clone()).unwrap(),
        None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    };
    let client = async move {
        let mut stream = TlsConnector::from(config)
            .connect(server_name, client_io)
            .await
            .map_err(|err| format!("client handshake: {err}"))?;
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .await
            .map_err(|err| format!("client read: {err}"))?;
        if reply != b"ok" {
            return Err(format!("unexpected reply {reply:?}"));
        }
        let (_, conn) = stream.get_ref();
        Ok(Seen {
            peer_certs: conn
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version(),
            suite: conn.negotiated_cipher_suite(),
            kind: conn.handshake_kind(),
        })
    };
    let both = async { tokio::join!(server, client) };
    let (server, client) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("handshake timed out");
    Outcome { server, client }
}

/// The test client trusts whatever the server presents: these tests check which certificate is served, not
/// chain building on the client.
#[derive(Debug)]
struct AnyServerCert;

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

fn algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}
