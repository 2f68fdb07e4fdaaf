//! rustls client configuration for HTTPS backends.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::transport::{TransportError, TransportSettings};

/// The process-wide crypto provider: ring only (see the workspace's dependency notes).
pub(crate) fn provider() -> Arc<CryptoProvider> {
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
pub(crate) fn read_certificates(
    source: &str,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs: Result<Vec<_>, _> = if source.trim_start().starts_with("-----BEGIN") {
        CertificateDer::pem_slice_iter(source.as_bytes()).collect()
    } else {
        CertificateDer::pem_file_iter(source)
            .map_err(|e| TransportError::Tls(format!("reading {source}: {e}")))?
            .collect()
    };
    let certs =
        certs.map_err(|e| TransportError::Tls(format!("parsing certificates in {source}: {e}")))?;
    if certs.is_empty() {
        return Err(TransportError::Tls(format!(
            "no certificate found in {source}"
        )));
    }
    Ok(certs)
}

fn read_key(source: &str) -> Result<PrivateKeyDer<'static>, TransportError> {
    let key = if source.trim_start().starts_with("-----BEGIN") {
        PrivateKeyDer::from_pem_slice(source.as_bytes())
    } else {
        PrivateKeyDer::from_pem_file(source)
    };
    key.map_err(|e| TransportError::Tls(format!("reading private key {source}: {e}")))
}

/// ALPN is left to the connector builder, which offers h2 unless `disableHTTP2`.
pub(crate) fn client_config(settings: &TransportSettings) -> Result<ClientConfig, TransportError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let builder = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    } else if settings.root_cas.is_empty() {
        builder.with_root_certificates(system_roots())
    } else {
        let mut store = RootCertStore::empty();
        for source in &settings.root_cas {
            for cert in read_certificates(source)? {
                store
                    .add(cert)
                    .map_err(|e| TransportError::Tls(format!("root CA in {source}: {e}")))?;
            }
        }
        builder.with_root_certificates(store)
    };
    let config = match settings.certificates.first() {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certificates(cert)?, read_key(key)?)
            .map_err(|e| TransportError::Tls(format!("client certificate {cert}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// `insecureSkipVerify`: signatures are still checked (so the handshake is a real one), but
/// the certificate chain and name are not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
