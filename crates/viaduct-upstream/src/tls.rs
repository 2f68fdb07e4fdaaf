//! rustls client configuration for HTTPS backends, and the pieces every TLS client of the
//! proxy shares (crypto provider, trust anchors, PEM reading): TCP backends use them too.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::transport::{TransportError, TransportSettings};

/// The process-wide crypto provider: ring only (see the workspace's dependency notes).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system trust store, read once: reading it costs milliseconds and it does not change
/// under a running process in practice.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for err in &loaded.errors {
                tracing::warn!(error = %err, "could not read a system CA certificate");
            }
            let (_added, _ignored) = store.add_parsable_certificates(loaded.certs);
            Arc::new(store)
        })
        .clone()
}

/// Reads PEM certificates from a file path or from inline PEM text (Traefik accepts both).
pub fn read_certificates(source: &str) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs: Result<Vec<_>, _> = if source.trim_start().starts_with("-----BEGIN") {
        CertificateDer::pem_slice_iter(source.as_bytes()).collect()
    } else {
        CertificateDer::pem_file_iter(source)
            .map_err(|e| TransportError::Tls(format!("reading {source}: {e}")))?
            .collect()
    };
    let certs = certs.map_err(|e| {
        TransportError::Tls(format!("parsing certificates in {}: {e}", origin(source)))
    })?;
    if certs.is_empty() {
        return Err(TransportError::Tls(format!(
            "no certificate found in {}",
            origin(source)
        )));
    }
    Ok(certs)
}

/// Reads a PEM private key from a file path or from inline PEM text.
pub fn read_key(source: &str) -> Result<PrivateKeyDer<'static>, TransportError> {
    let key = if source.trim_start().starts_with("-----BEGIN") {
        PrivateKeyDer::from_pem_slice(source.as_bytes())
    } else {
        PrivateKeyDer::from_pem_file(source)
    };
    key.map_err(|e| TransportError::Tls(format!("reading private key {}: {e}", origin(source))))
}

/// Where PEM came from, for messages: the path, or "inline PEM", so that key material given
/// inline is never echoed into logs.
fn origin(source: &str) -> &str {
    if source.contains("-----BEGIN") {
        "inline PEM"
    } else {
        source
    }
}

/// A client configuration from a provider's or exporter's `tls` section (`ca`, `cert`/`key`,
/// `insecureSkipVerify`; each of `ca`, `cert`, `key` a file path or PEM text), for clients other
/// than the backends' (configuration endpoints, KV stores). No section: the system's roots.
pub fn client_config_from(
    tls: Option<&viaduct_config::static_config::ClientTls>,
) -> Result<ClientConfig, TransportError> {
    let provider = crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let ca: Vec<String> = tls
        .and_then(|t| t.ca.clone())
        .filter(|ca| !ca.is_empty())
        .into_iter()
        .collect();
    let verified = if tls.is_some_and(|t| t.insecure_skip_verify) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(skip_verification(provider))
    } else {
        builder.with_root_certificates(trust_anchors(&ca)?)
    };
    let cert = tls
        .and_then(|t| t.cert.as_deref())
        .filter(|c| !c.is_empty());
    let key = tls.and_then(|t| t.key.as_deref()).filter(|k| !k.is_empty());
    match (cert, key) {
        (Some(cert), Some(key)) => verified
            .with_client_auth_cert(read_certificates(cert)?, read_key(key)?)
            .map_err(|e| TransportError::Tls(format!("client certificate: {e}"))),
        (None, None) => Ok(verified.with_no_client_auth()),
        _ => Err(TransportError::Tls("cert and key go together".into())),
    }
}

/// ALPN is left to the connector builder, which offers h2 unless `disableHTTP2`.
pub(crate) fn client_config(settings: &TransportSettings) -> Result<ClientConfig, TransportError> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let builder = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(skip_verification(crypto_provider()))
    } else if let Some(uri) = &settings.peer_cert_uri {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(BackendVerifier {
                check: Check::PeerUri {
                    roots: trust_anchors(&settings.root_cas)?,
                    uri: uri.clone(),
                },
                provider: crypto_provider(),
            }))
    } else {
        builder.with_root_certificates(trust_anchors(&settings.root_cas)?)
    };
    let config = match settings.certificates.first() {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certificates(cert)?, read_key(key)?)
            .map_err(|e| TransportError::Tls(format!("client certificate {cert}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// The trust anchors: `rootCAs` (files or inline PEM), or the system's when there are none.
pub fn trust_anchors(root_cas: &[String]) -> Result<Arc<RootCertStore>, TransportError> {
    if root_cas.is_empty() {
        return Ok(system_roots());
    }
    let mut store = RootCertStore::empty();
    for source in root_cas {
        for cert in read_certificates(source)? {
            store
                .add(cert)
                .map_err(|e| TransportError::Tls(format!("root CA in {source}: {e}")))?;
        }
    }
    Ok(Arc::new(store))
}

/// The backend certificate checks that are not rustls' usual ones. Handshake signatures are
/// verified either way, so the handshake is a real one.
#[derive(Debug)]
pub(crate) struct BackendVerifier {
    pub(crate) check: Check,
    pub(crate) provider: Arc<CryptoProvider>,
}

/// A verifier for `insecureSkipVerify`, for every client of the proxy that offers the option
/// (backends over HTTP and TCP, telemetry collectors): neither the chain nor the name is checked,
/// handshake signatures still are.
pub fn skip_verification(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(BackendVerifier {
        check: Check::Nothing,
        provider,
    })
}

#[derive(Debug)]
pub(crate) enum Check {
    /// `insecureSkipVerify`: neither the chain nor the name.
    Nothing,
    /// `peerCertURI`, as Traefik checks it: the chain must lead to a trusted root, and the
    /// leaf must name the URI among its subject alternative names; the DNS name is not
    /// checked (the URI identifies the peer, as in SPIFFE-style service identities).
    PeerUri {
        roots: Arc<RootCertStore>,
        uri: String,
    },
}

impl ServerCertVerifier for BackendVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Check::PeerUri { roots, uri } = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if certificate_has_uri(end_entity, uri) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the backend's certificate does not name {uri} (peerCertURI)"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// True when `cert` lists `uri` among its URI subject alternative names.
fn certificate_has_uri(cert: &CertificateDer<'_>, uri: &str) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(
        |name| matches!(name, x509_parser::extensions::GeneralName::URI(found) if *found == uri),
    )
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

    use super::*;

    const URI: &str = "spiffe://example.test/backend";

    /// A CA, and a leaf it signed for `backend.test` naming `URI`.
    fn chain() -> (CertificateDer<'static>, CertificateDer<'static>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["backend.test".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::URI(URI.try_into().unwrap()));
        let leaf_cert = leaf
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        (ca_cert.der().clone(), leaf_cert.der().clone())
    }

    fn verifier(ca: Option<&CertificateDer<'static>>, uri: &str) -> BackendVerifier {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = ca {
            roots.add(ca.clone()).unwrap();
        }
        BackendVerifier {
            check: Check::PeerUri {
                roots: Arc::new(roots),
                uri: uri.to_string(),
            },
            provider: crypto_provider(),
        }
    }

    fn verify(verifier: &BackendVerifier, leaf: &CertificateDer<'_>) -> bool {
        // The name asked for is not the certificate's: only the URI identifies the peer.
        let name = ServerName::try_from("10.0.0.7").unwrap();
        verifier
            .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn peer_cert_uri_needs_a_trusted_chain_and_the_uri() {
        let (ca, leaf) = chain();
        assert!(verify(&verifier(Some(&ca), URI), &leaf));
        assert!(
            !verify(&verifier(Some(&ca), "spiffe://example.test/other"), &leaf),
            "another URI"
        );
        assert!(!verify(&verifier(None, URI), &leaf), "an untrusted chain");
    }
}
