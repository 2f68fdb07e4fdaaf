//! Stored certificates made servable: parsed chain and key, the names they cover and when they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::storage::StoredCertificate;

/// A stored certificate, ready to serve.
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// Lower-case DNS names and IP addresses from the leaf's SANs (its CN when it has none).
    pub names: Vec<String>,
    pub not_after: SystemTime,
    pub key: Arc<CertifiedKey>,
}

impl LoadedCertificate {
    pub fn parse(stored: &StoredCertificate) -> Result<LoadedCertificate, String> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&stored.certificate)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("certificate: {e}"))?;
        let leaf = chain.first().ok_or("certificate: no PEM certificate")?;
        let (names, not_after) = leaf_names(leaf)?;
        let key = PrivateKeyDer::from_pem_slice(&stored.key).map_err(|e| format!("key: {e}"))?;
        let provider = rustls::crypto::ring::default_provider();
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| format!("key: {e}"))?;
        Ok(LoadedCertificate {
            names,
            not_after,
            key: Arc::new(key),
        })
    }

    /// True if this certificate serves `name` (exactly, or through a one-label wildcard).
    pub fn covers(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|served| {
            *served == name
                || served.strip_prefix("*.").is_some_and(|parent| {
                    name.split_once('.').is_some_and(|(_, rest)| rest == parent)
                })
        })
    }
}

fn leaf_names(leaf: &CertificateDer<'_>) -> Result<(Vec<String>, SystemTime), String> {
    let (_, cert) =
        X509Certificate::from_der(leaf.as_ref()).map_err(|e| format!("certificate: {e}"))?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        if let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
        {
            names.push(cn.to_ascii_lowercase());
        }
    }
    let seconds = cert.validity().not_after.timestamp();
    let not_after = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    Ok((names, not_after))
}
