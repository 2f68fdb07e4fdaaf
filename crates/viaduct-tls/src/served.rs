//! The certificates a compiled configuration serves, described as Traefik labels them in
//! `traefik_tls_certs_not_after`.

use std::collections::HashSet;

use rustls::sign::CertifiedKey;

/// One served certificate's leaf, as Traefik describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServedCertificate {
    /// The subject's common name (the last one when there are several, as Go reads it).
    pub common_name: String,
    /// The serial number in decimal, as Go's `big.Int` prints it.
    pub serial: String,
    /// The DNS subject alternative names, sorted and comma-separated (IP addresses are left
    /// out, as in Traefik).
    pub sans: String,
    /// NotAfter, in Unix seconds.
    pub not_after_unix: i64,
}

/// Describes each certificate's leaf once per distinct description, in order. A leaf that does
/// not parse is skipped: it was parsed when loaded, so this cannot happen for a served one.
pub(crate) fn describe<'a>(
    certificates: impl IntoIterator<Item = &'a CertifiedKey>,
) -> Vec<ServedCertificate> {
    let mut seen = HashSet::new();
    certificates
        .into_iter()
        .filter_map(|key| key.cert.first())
        .filter_map(|leaf| describe_leaf(leaf))
        .filter(|served| seen.insert(served.clone()))
        .collect()
}

fn describe_leaf(leaf: &[u8]) -> Option<ServedCertificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .last()
        .unwrap_or_default()
        .to_string();
    let mut dns_names: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => Some(*dns),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    // Traefik sorts a certificate's DNS names when it stores it, and labels it from there.
    dns_names.sort_unstable();
    Some(ServedCertificate {
        common_name,
        serial: cert.tbs_certificate.serial.to_string(),
        sans: dns_names.join(","),
        not_after_unix: cert.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;

    fn certified(cn: &str, sans: &[&str], serial: u64) -> CertifiedKey {
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        params.not_after = rcgen::date_time_ymd(2030, 1, 2);
        let cert = params.self_signed(&key_pair).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        CertifiedKey::from_der(vec![cert.der().clone()], key, &crate::provider()).unwrap()
    }

    #[test]
    fn labels_as_traefik_with_sorted_dns_names_and_decimal_serial() {
        let cert = certified("zzz.test", &["zzz.test", "aaa.test", "127.0.0.1"], 4_660);
        let served = describe([&cert]);
        assert_eq!(
            served,
            vec![ServedCertificate {
                common_name: "zzz.test".into(),
                serial: "4660".into(),
                sans: "aaa.test,zzz.test".into(),
                not_after_unix: 1_893_542_400,
            }]
        );
    }

    #[test]
    fn the_same_certificate_twice_is_described_once() {
        let cert = certified("a.test", &["a.test"], 7);
        assert_eq!(describe([&cert, &cert]).len(), 1);
    }
}
