//! `passTLSClientCert`: passes the client's TLS certificate chain to the backend, as PEM
//! (`X-Forwarded-Tls-Client-Cert`) and/or as selected fields
//! (`X-Forwarded-Tls-Client-Cert-Info`), in Traefik's exact formats.
//!
//! As in Traefik, without a client certificate the headers are left as the client sent them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    Oid, OID_DOMAIN_COMPONENT, OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATIONAL_UNIT, OID_X509_ORGANIZATION_NAME, OID_X509_SERIALNUMBER,
    OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};

const CERT_HEADER: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
const INFO_HEADER: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    pem: bool,
    #[serde(default)]
    info: Option<InfoOptions>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InfoOptions {
    #[serde(default)]
    not_after: bool,
    #[serde(default)]
    not_before: bool,
    #[serde(default)]
    sans: bool,
    #[serde(default)]
    serial_number: bool,
    #[serde(default)]
    subject: Option<DnOptions>,
    #[serde(default)]
    issuer: Option<IssuerDnOptions>,
}

/// The subject fields to pass.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DnOptions {
    #[serde(default)]
    country: bool,
    #[serde(default)]
    province: bool,
    #[serde(default)]
    locality: bool,
    #[serde(default)]
    organization: bool,
    #[serde(default)]
    organizational_unit: bool,
    #[serde(default)]
    common_name: bool,
    #[serde(default)]
    serial_number: bool,
    #[serde(default)]
    domain_component: bool,
}

/// The issuer fields to pass (no organizational unit, as in Traefik).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IssuerDnOptions {
    #[serde(default)]
    country: bool,
    #[serde(default)]
    province: bool,
    #[serde(default)]
    locality: bool,
    #[serde(default)]
    organization: bool,
    #[serde(default)]
    common_name: bool,
    #[serde(default)]
    serial_number: bool,
    #[serde(default)]
    domain_component: bool,
}

#[derive(Debug)]
pub(crate) struct PassTlsClientCert {
    pem: bool,
    info: Option<Info>,
}

#[derive(Debug)]
struct Info {
    not_after: bool,
    not_before: bool,
    sans: bool,
    serial_number: bool,
    subject: Option<DnOptions>,
    issuer: Option<DnOptions>,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let info = options.info.map(|i| Info {
        not_after: i.not_after,
        not_before: i.not_before,
        sans: i.sans,
        serial_number: i.serial_number,
        subject: i.subject,
        issuer: i.issuer.map(|o| DnOptions {
            country: o.country,
            province: o.province,
            locality: o.locality,
            organization: o.organization,
            organizational_unit: false,
            common_name: o.common_name,
            serial_number: o.serial_number,
            domain_component: o.domain_component,
        }),
    });
    Ok(Arc::new(PassTlsClientCert {
        pem: options.pem,
        info,
    }))
}

impl Middleware for PassTlsClientCert {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let chain = ctx.client_certificates.filter(|c| !c.is_empty());
        match chain {
            Some(chain) => {
                if self.pem {
                    if let Ok(value) = HeaderValue::from_str(&pem_value(chain)) {
                        request.headers_mut().insert(CERT_HEADER, value);
                    }
                }
                if let Some(info) = &self.info {
                    let text = query_escape(&info.describe(chain));
                    if let Ok(value) = HeaderValue::from_str(&text) {
                        request.headers_mut().insert(INFO_HEADER, value);
                    }
                }
            }
            None if self.pem || self.info.is_some() => {
                tracing::debug!(
                    router = ctx.router,
                    "passTLSClientCert: no client certificate"
                );
            }
            None => {}
        }
        next.run(request)
    }
}

/// Each certificate's DER in base64 (a PEM block without its armour and line breaks),
/// joined with `,`.
fn pem_value(chain: &[CertificateDer<'static>]) -> String {
    let engine = &base64::engine::general_purpose::STANDARD;
    chain
        .iter()
        .map(|c| engine.encode(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

impl Info {
    /// `Subject="…";Issuer="…";SerialNumber="…";NB="…";NA="…";SAN="…"` per certificate,
    /// empty fields left out, certificates joined with `,`.
    fn describe(&self, chain: &[CertificateDer<'static>]) -> String {
        let mut all = Vec::with_capacity(chain.len());
        for der in chain {
            let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
                all.push(String::new());
                continue;
            };
            let mut fields = Vec::new();
            if let Some(options) = &self.subject {
                let subject = distinguished_name(options, cert.subject());
                if !subject.is_empty() {
                    fields.push(format!("Subject=\"{subject}\""));
                }
            }
            if let Some(options) = &self.issuer {
                let issuer = distinguished_name(options, cert.issuer());
                if !issuer.is_empty() {
                    fields.push(format!("Issuer=\"{issuer}\""));
                }
            }
            if self.serial_number {
                fields.push(format!("SerialNumber=\"{}\"", decimal(cert.raw_serial())));
            }
            if self.not_before {
                fields.push(format!("NB=\"{}\"", cert.validity().not_before.timestamp()));
            }
            if self.not_after {
                fields.push(format!("NA=\"{}\"", cert.validity().not_after.timestamp()));
            }
            if self.sans {
                let sans = sans(&cert);
                if !sans.is_empty() {
                    fields.push(format!("SAN=\"{}\"", sans.join(",")));
                }
            }
            all.push(fields.join(";"));
        }
        all.join(",")
    }
}

/// The selected parts of a name in Traefik's order (DC, C, ST, L, O, OU, SN, CN), each
/// `X=value`, joined with `,`. Like Go, the last CN and SN win.
fn distinguished_name(options: &DnOptions, name: &X509Name<'_>) -> String {
    let values = |oid: &Oid<'_>| -> Vec<&str> {
        name.iter_rdn()
            .flat_map(|rdn| rdn.iter())
            .filter(|atv| atv.attr_type() == oid)
            .filter_map(|atv| atv.as_str().ok())
            .collect()
    };
    let mut parts: Vec<String> = Vec::new();
    let mut add_all = |enabled: bool, oid: &Oid<'_>, prefix: &str, last_only: bool| {
        if !enabled {
            return;
        }
        let found = values(oid);
        let chosen: Vec<&str> = if last_only {
            found.last().copied().into_iter().collect()
        } else {
            found
        };
        parts.extend(
            chosen
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{prefix}={v}")),
        );
    };
    add_all(options.domain_component, &OID_DOMAIN_COMPONENT, "DC", false);
    add_all(options.country, &OID_X509_COUNTRY_NAME, "C", false);
    add_all(
        options.province,
        &OID_X509_STATE_OR_PROVINCE_NAME,
        "ST",
        false,
    );
    add_all(options.locality, &OID_X509_LOCALITY_NAME, "L", false);
    add_all(
        options.organization,
        &OID_X509_ORGANIZATION_NAME,
        "O",
        false,
    );
    add_all(
        options.organizational_unit,
        &OID_X509_ORGANIZATIONAL_UNIT,
        "OU",
        false,
    );
    add_all(options.serial_number, &OID_X509_SERIALNUMBER, "SN", true);
    add_all(options.common_name, &OID_X509_COMMON_NAME, "CN", true);
    parts.join(",")
}

/// DNS names, then e-mail addresses, then IP addresses, then URIs, as Go groups them.
fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(extension)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    let names = &extension.value.general_names;
    let mut out = Vec::with_capacity(names.len());
    for pass in 0..4 {
        for name in names {
            match (pass, name) {
                (0, GeneralName::DNSName(dns)) => out.push(dns.to_string()),
                (1, GeneralName::RFC822Name(email)) => out.push(email.to_string()),
                (2, GeneralName::IPAddress(bytes)) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        out.push(ip.to_string());
                    }
                }
                (3, GeneralName::URI(uri)) => out.push(uri.to_string()),
                _ => {}
            }
        }
    }
    out
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    let v6 = <[u8; 16]>::try_from(bytes).ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(v6)).to_canonical())
}

/// A big-endian unsigned integer in decimal (Go's `big.Int.String`).
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if number.is_empty() {
        return "0".into();
    }
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = u8::try_from(value / 10).unwrap_or(0);
            remainder = value % 10;
        }
        digits.push(b'0' + u8::try_from(remainder).unwrap_or(0));
        let leading = number.iter().take_while(|b| **b == 0).count();
        number.drain(..leading);
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Go's `url.QueryEscape`: unreserved characters kept, space as `+`, the rest `%XX`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_in_decimal() {
        assert_eq!(decimal(&[0x00, 0x01, 0x00]), "256");
        assert_eq!(
            decimal(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            u64::MAX.to_string()
        );
        assert_eq!(decimal(&[]), "0");
    }

    #[test]
    fn escapes_like_go_query_escape() {
        assert_eq!(
            query_escape("Subject=\"CN=a b,O=x\";NB=\"1\""),
            "Subject%3D%22CN%3Da+b%2CO%3Dx%22%3BNB%3D%221%22"
        );
    }
}
