//! TLS to `https://` collectors (`otlp.http.tls`: `ca`, `cert`, `key`, `insecureSkipVerify`),
//! with rustls on the exporter's blocking socket.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;

/// `otlp.http.tls` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTlsOptions {
    /// The CA to trust instead of the system's: a file path or PEM text.
    pub ca: Option<String>,
    /// A client certificate and its key, each a file path or PEM text.
    pub cert: Option<String>,
    pub key: Option<String>,
    pub insecure_skip_verify: bool,
}

/// A built client configuration. Equal only to itself: settings compare by identity here.
#[derive(Clone)]
pub struct ClientTls(pub(crate) Arc<ClientConfig>);

impl ClientTls {
    /// The error says what could not be read or used.
    pub fn build(options: &ClientTlsOptions) -> Result<ClientTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = if options.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(viaduct_upstream::skip_verification(provider))
        } else {
            builder.with_root_certificates(roots(options.ca.as_deref())?)
        };
        let config = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(certificates(cert)?, private_key(key)?)
                .map_err(|e| format!("tls.cert: {e}"))?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("tls.cert and tls.key go together".into()),
        };
        Ok(ClientTls(Arc::new(config)))
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

/// `ca`, or the system's trust store.
fn roots(ca: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(ca) => {
            for cert in certificates(ca)? {
                store.add(cert).map_err(|e| format!("tls.ca: {e}"))?;
            }
        }
        None => {
            let loaded = rustls_native_certs::load_native_certs();
            for err in &loaded.errors {
                tracing::warn!(error = %err, "could not read a system CA certificate");
            }
            store.add_parsable_certificates(loaded.certs);
        }
    }
    Ok(store)
}

/// Certificates from a file path or PEM text (Traefik accepts both).
fn certificates(source: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = if source.trim_start().starts_with("-----BEGIN") {
        CertificateDer::pem_slice_iter(source.as_bytes()).collect()
    } else {
        CertificateDer::pem_file_iter(source)
            .map_err(|e| format!("reading {source}: {e}"))?
            .collect()
    };
    let certs = certs.map_err(|e| format!("parsing certificates in {}: {e}", origin(source)))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", origin(source)));
    }
    Ok(certs)
}

fn private_key(source: &str) -> Result<PrivateKeyDer<'static>, String> {
    let key = if source.trim_start().starts_with("-----BEGIN") {
        PrivateKeyDer::from_pem_slice(source.as_bytes())
    } else {
        PrivateKeyDer::from_pem_file(source)
    };
    key.map_err(|e| format!("reading the private key in {}: {e}", origin(source)))
}

/// Where PEM came from, without echoing key material into logs.
fn origin(source: &str) -> &str {
    if source.contains("-----BEGIN") {
        "inline PEM"
    } else {
        source
    }
}
