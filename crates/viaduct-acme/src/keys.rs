//! Certificate keys (Traefik's `keyType`), certificate signing requests and the TLS-ALPN-01 challenge certificate.

use std::sync::Arc;

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::AcmeError;

/// Traefik's `keyType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ec256,
    Ec384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Rsa8192,
}

/// A freshly generated certificate key.
pub struct GeneratedKey {
    pub pkcs8: PrivatePkcs8KeyDer<'static>,
    pub pair: KeyPair,
}

impl KeyType {
    pub fn parse(value: &str) -> Option<KeyType> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "EC256" | "P256" => KeyType::Ec256,
            "EC384" | "P384" => KeyType::Ec384,
            "RSA2048" | "2048" => KeyType::Rsa2048,
            "RSA3072" | "3072" => KeyType::Rsa3072,
            "RSA4096" | "4096" => KeyType::Rsa4096,
            "RSA8192" | "8192" => KeyType::Rsa8192,
            _ => return None,
        })
    }

    /// The value `acme.json` stores (lego's `certcrypto.KeyType`).
    pub fn stored_name(self) -> &'static str {
        match self {
            KeyType::Ec256 => "P256",
            KeyType::Ec384 => "P384",
            KeyType::Rsa2048 => "2048",
            KeyType::Rsa3072 => "3072",
            KeyType::Rsa4096 => "4096",
            KeyType::Rsa8192 => "8192",
        }
    }

    fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
            KeyType::Rsa4096 => Some(4096),
            KeyType::Rsa8192 => Some(8192),
            KeyType::Ec256 | KeyType::Ec384 => None,
        }
    }

    /// Generates a key. RSA generation takes seconds, so it runs on the blocking pool, off the proxy's workers.
    pub async fn generate(self) -> Result<GeneratedKey, AcmeError> {
        let failed = |message: String| AcmeError::KeyGeneration {
            key_type: format!("{self:?}"),
            message,
        };
        let (pkcs8, algorithm) = match self.rsa_bits() {
            Some(bits) => {
                let der = tokio::task::spawn_blocking(move || generate_rsa(bits))
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .map_err(failed)?;
                (der, &rcgen::PKCS_RSA_SHA256)
            }
            None => {
                let algorithm = if self == KeyType::Ec384 {
                    &rcgen::PKCS_ECDSA_P384_SHA384
                } else {
                    &rcgen::PKCS_ECDSA_P256_SHA256
                };
                let pair = KeyPair::generate_for(algorithm).map_err(|e| failed(e.to_string()))?;
                (PrivatePkcs8KeyDer::from(pair.serialize_der()), algorithm)
            }
        };
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, algorithm)
            .map_err(|e| failed(e.to_string()))?;
        Ok(GeneratedKey { pkcs8, pair })
    }
}

/// A CSR for `names` (DNS names; the first is the common name unless `disable_common_name`).
pub fn csr(names: &[String], key: &KeyPair, disable_common_name: bool) -> Result<Vec<u8>, String> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(|e| e.to_string())?;
    params.distinguished_name = DistinguishedName::new();
    if !disable_common_name {
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
    }
    let request = params.serialize_request(key).map_err(|e| e.to_string())?;
    Ok(request.der().to_vec())
}

/// The self-signed certificate answering a TLS-ALPN-01 validation for `domain` (RFC 8737): the domain as its only SAN
/// and the SHA-256 digest of the key authorization in the critical `acmeIdentifier` extension.
pub fn alpn_challenge_certificate(
    domain: &str,
    digest: &[u8],
) -> Result<Arc<CertifiedKey>, String> {
    let pair = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&pair).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.serialize_der()));
    // Not `CertifiedKey::from_der`: its consistency check parses the certificate with webpki, which rejects the
    // critical extension validators require.
    let signing_key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

fn generate_rsa(bits: usize) -> Result<PrivatePkcs8KeyDer<'static>, String> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use x509_parser::prelude::FromDer;

    #[tokio::test]
    async fn every_key_type_signs_a_csr_for_its_names() {
        let names = vec!["a.example.com".to_string(), "b.example.com".to_string()];
        for key_type in [KeyType::Ec256, KeyType::Ec384, KeyType::Rsa2048] {
            let key = key_type.generate().await.unwrap();
            let der = csr(&names, &key.pair, false).unwrap();
            let (_, request) =
                x509_parser::certification_request::X509CertificationRequest::from_der(&der)
                    .unwrap();
            let subject = request.certification_request_info.subject.to_string();
            assert_eq!(subject, "CN=a.example.com", "{key_type:?}");
        }
        let key = KeyType::Ec256.generate().await.unwrap();
        let der = csr(&names, &key.pair, true).unwrap();
        let (_, request) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        assert_eq!(request.certification_request_info.subject.to_string(), "");
    }

    #[test]
    fn the_alpn_challenge_certificate_carries_the_critical_acme_identifier() {
        let digest = [7u8; 32];
        let key = alpn_challenge_certificate("a.example.com", &digest).unwrap();
        let (_, cert) =
            x509_parser::certificate::X509Certificate::from_der(key.cert[0].as_ref()).unwrap();
        let extension = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .unwrap();
        assert!(extension.critical);
        // An OCTET STRING (0x04, length 32) wrapping the digest.
        assert_eq!(&extension.value[..2], &[0x04, 32]);
        assert_eq!(&extension.value[2..], &digest);
    }
}
