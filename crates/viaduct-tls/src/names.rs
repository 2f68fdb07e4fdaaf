//! The names a certificate answers for, read from its leaf: DNS and IP subject alternative names, else the subject's
//! common name (as Go's crypto/tls does for certificates without SANs).

use std::net::IpAddr;

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::TlsError;

/// What the store needs to know about a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeafInfo {
    /// Lower-case DNS names, wildcards (`*.example.com`) included, and IP addresses in canonical text form.
    pub names: Vec<String>,
    /// Outside its validity period now (expired, or not valid yet).
    pub expired: bool,
}

pub(crate) fn leaf_info(leaf: &CertificateDer<'_>, origin: &str) -> Result<LeafInfo, TlsError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|err| TlsError::Certificate {
            origin: origin.to_string(),
            reason: err.to_string(),
        })?;
    let mut names = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|err| TlsError::Certificate {
            origin: origin.to_string(),
            reason: err.to_string(),
        })?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    names.push(dns.trim_end_matches('.').to_ascii_lowercase())
                }
                GeneralName::IPAddress(octets) => {
                    if let Some(ip) = ip_from_octets(octets) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(|cn| cn.to_ascii_lowercase()),
        );
    }
    let expired = cert.validity().time_to_expiration().is_none();
    Ok(LeafInfo { names, expired })
}

fn ip_from_octets(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(octets).ok().map(IpAddr::from),
        _ => None,
    }
}
