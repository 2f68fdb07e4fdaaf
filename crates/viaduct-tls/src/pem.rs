//! PEM input as Traefik accepts it: every `certFile`, `keyFile` and `caFiles` entry is either a path or the PEM text
//! itself.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// Parses a certificate chain (leaf first).
pub(crate) fn load_certs(
    value: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (bytes, origin) = read(value, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::Pem {
            what,
            origin: origin.clone(),
            reason: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            origin,
            expected: "PEM certificate",
        });
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn load_key(
    value: &str,
    what: &'static str,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let (bytes, origin) = read(value, what)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what,
            origin,
            expected: "PEM private key",
        },
        other => TlsError::Pem {
            what,
            origin,
            reason: other.to_string(),
        },
    })
}

/// Describes where a value came from without echoing inline key material into logs.
pub(crate) fn origin(value: &str) -> String {
    if is_inline(value) {
        "inline PEM".to_string()
    } else {
        value.to_string()
    }
}

fn is_inline(value: &str) -> bool {
    value.contains("-----BEGIN")
}

fn read(value: &str, what: &'static str) -> Result<(Vec<u8>, String), TlsError> {
    if is_inline(value) {
        return Ok((value.as_bytes().to_vec(), origin(value)));
    }
    if value.trim().is_empty() {
        return Err(TlsError::Empty {
            what,
            origin: "an empty value".to_string(),
            expected: "path or PEM",
        });
    }
    let bytes = std::fs::read(value).map_err(|source| TlsError::Read {
        what,
        path: value.to_string(),
        source,
    })?;
    Ok((bytes, value.to_string()))
}
