//! `preferredChain`: when the CA offers alternate chains for a certificate (RFC 8555 §7.4.2: `Link: <url>;
//! rel="alternate"` on the certificate download), the chain whose topmost certificate was issued by a CA with that
//! Common Name is kept, as Traefik's ACME client (lego) does; when none is, the CA's default chain.
//!
//! instant-acme neither reports those links nor downloads alternates, but its `Account::order` is an authenticated
//! POST-as-GET to any URL, with its nonce handling and `badNonce` retries. Its answer cannot be read as an order, so
//! [`Downloads`] records it on its way through Viaduct's HTTP client: certificates are fetched without a second JWS
//! implementation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use instant_acme::{Account, BytesResponse};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Responses recorded for the URLs being downloaded, shared between a resolver and its HTTP client.
#[derive(Clone, Default)]
pub struct Downloads {
    /// Normalised URL → its latest response (a `badNonce` retry replaces the rejected attempt).
    watched: Arc<Mutex<HashMap<String, Option<Download>>>>,
}

/// One certificate download as the CA answered it.
#[derive(Debug, Clone)]
pub struct Download {
    pub status: StatusCode,
    /// The `rel="alternate"` links, absolute, in the order the CA sent them.
    pub alternates: Vec<String>,
    pub body: Bytes,
}

impl Downloads {
    pub fn new() -> Downloads {
        Downloads::default()
    }

    /// True if the response to a request for `uri` is to be recorded.
    pub fn is_watched(&self, uri: &Uri) -> bool {
        self.lock().contains_key(&uri.to_string())
    }

    /// Records the response for `uri` and hands it on unchanged (its body read whole, as instant-acme reads it).
    pub async fn record(
        &self,
        uri: &Uri,
        mut response: BytesResponse,
    ) -> Result<BytesResponse, instant_acme::Error> {
        let body = response
            .body
            .into_bytes()
            .await
            .map_err(instant_acme::Error::Other)?;
        let download = Download {
            status: response.parts.status,
            alternates: alternate_links(&response.parts.headers, uri),
            body: body.clone(),
        };
        if let Some(slot) = self.lock().get_mut(&uri.to_string()) {
            *slot = Some(download);
        }
        Ok(BytesResponse {
            parts: response.parts,
            body: Box::new(body),
        })
    }

    fn watch(&self, uri: &Uri) {
        self.lock().insert(uri.to_string(), None);
    }

    fn take(&self, uri: &Uri) -> Option<Download> {
        self.lock().remove(&uri.to_string()).flatten()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Download>>> {
        // The map holds plain data, consistent after any panic: a poisoned lock is still usable.
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Returns `default_chain` or, when it is not issued under `preferred`, the first alternate chain of the certificate at
/// `certificate_url` that is. A failed download keeps the default chain (lego gives the order up instead): the
/// certificate is issued and valid, and the next renewal asks again.
pub async fn prefer(
    account: &Account,
    downloads: &Downloads,
    certificate_url: &str,
    default_chain: String,
    preferred: &str,
) -> String {
    if issued_under(default_chain.as_bytes(), preferred) {
        return default_chain;
    }
    // The first download's links are not reported by instant-acme: the certificate URL is read once more.
    let alternates = match download(account, downloads, certificate_url).await {
        Ok(first) => first.alternates,
        Err(e) => {
            tracing::warn!(url = %certificate_url, error = %e, "cannot list the alternate chains; the default chain is kept");
            return default_chain;
        }
    };
    for url in &alternates {
        match download(account, downloads, url).await {
            Ok(alternate) if issued_under(&alternate.body, preferred) => {
                // Another leaf would not match the key this order generated.
                if leaf(&alternate.body) != leaf(default_chain.as_bytes()) {
                    tracing::warn!(url = %url, "an alternate chain carries another certificate; it is ignored");
                    continue;
                }
                tracing::debug!(url = %url, preferred_chain = %preferred, "alternate chain chosen");
                return String::from_utf8_lossy(&alternate.body).into_owned();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "cannot download an alternate chain; the default chain is kept");
                return default_chain;
            }
        }
    }
    tracing::debug!(preferred_chain = %preferred, alternates = alternates.len(), "no chain matches preferredChain; the default chain is kept");
    default_chain
}

/// True if the topmost certificate of `chain` (PEM: the leaf, then its issuers) was issued by a CA whose Common Name is
/// `preferred`. A chain of a leaf alone has no issuer to compare, as for lego.
pub fn issued_under(chain: &[u8], preferred: &str) -> bool {
    topmost_issuer(chain).is_some_and(|issuer| issuer == preferred)
}

/// POST-as-GET of `url` with the account's key, through instant-acme.
async fn download(account: &Account, downloads: &Downloads, url: &str) -> Result<Download, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    downloads.watch(&uri);
    // The certificate is not an order: the parse error instant-acme returns for a successful download is expected.
    let outcome = account.order(url.to_string()).await;
    match downloads.take(&uri) {
        Some(download) if download.status.is_success() => Ok(download),
        Some(download) => Err(format!(
            "{}: {}",
            download.status,
            String::from_utf8_lossy(&download.body)
        )),
        None => Err(match outcome {
            Err(e) => e.to_string(),
            Ok(_) => "no response".to_string(),
        }),
    }
}

/// The Common Name of the issuer of the last certificate of a PEM chain of two or more.
fn topmost_issuer(chain: &[u8]) -> Option<String> {
    let certificates = certificates(chain)?;
    if certificates.len() < 2 {
        return None;
    }
    let (_, topmost) = X509Certificate::from_der(certificates.last()?.as_ref()).ok()?;
    // Go's pkix.Name keeps the last CN attribute; lego compares that one.
    let common_name = topmost.issuer().iter_common_name().last()?;
    common_name.as_str().ok().map(str::to_string)
}

fn leaf(chain: &[u8]) -> Option<CertificateDer<'static>> {
    certificates(chain)?.into_iter().next()
}

fn certificates(chain: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(chain)
        .collect::<Result<_, _>>()
        .ok()
}

/// The `rel="alternate"` targets of the `Link` headers, made absolute against `base`.
fn alternate_links(headers: &HeaderMap, base: &Uri) -> Vec<String> {
    let mut links = Vec::new();
    for value in headers.get_all(http::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in split_links(value) {
            let Some((target, params)) = link
                .trim()
                .strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
            else {
                continue;
            };
            let alternate = params.split(';').any(|param| {
                param.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("alternate"))
                })
            });
            if alternate {
                links.extend(absolute(target.trim(), base));
            }
        }
    }
    links
}

/// Splits a `Link` header value at the commas between link-values (not those inside `<…>` or quotes).
fn split_links(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_target, mut in_quotes) = (0, false, false);
    for (index, byte) in value.bytes().enumerate() {
        match byte {
            b'<' if !in_quotes => in_target = true,
            b'>' if !in_quotes => in_target = false,
            b'"' if !in_target => in_quotes = !in_quotes,
            b',' if !in_target && !in_quotes => {
                parts.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn absolute(target: &str, base: &Uri) -> Option<String> {
    if target.starts_with("https://") || target.starts_with("http://") {
        return Some(target.to_string());
    }
    let path = target.strip_prefix('/')?;
    let scheme = base.scheme_str()?;
    let authority = base.authority()?;
    Some(format!("{scheme}://{authority}/{path}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    struct Ca {
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
        pem: String,
    }

    fn ca(name: &str, parent: Option<&Ca>) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let certificate = match parent {
            Some(parent) => params.signed_by(&key, &parent.issuer).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        Ca {
            issuer: rcgen::Issuer::new(params, key),
            pem: certificate.pem(),
        }
    }

    /// A leaf for `app.test.example` with the chain `leaf, intermediate` as a CA serves it.
    fn chain(intermediate: &Ca) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["app.test.example".into()]).unwrap();
        let leaf = params.signed_by(&key, &intermediate.issuer).unwrap();
        format!("{}{}", leaf.pem(), intermediate.pem)
    }

    #[test]
    fn the_chain_is_named_by_the_issuer_of_its_topmost_certificate() {
        let (root_a, root_b) = (ca("Root CA A", None), ca("Root CA B", None));
        let default = chain(&ca("Intermediate A", Some(&root_a)));
        let alternate = chain(&ca("Intermediate B", Some(&root_b)));
        assert!(issued_under(default.as_bytes(), "Root CA A"));
        assert!(!issued_under(default.as_bytes(), "Root CA B"));
        assert!(issued_under(alternate.as_bytes(), "Root CA B"));
        // The intermediate's own name, or the CN in another case, does not name the chain.
        assert!(!issued_under(default.as_bytes(), "Intermediate A"));
        assert!(!issued_under(default.as_bytes(), "root ca a"));
    }

    #[test]
    fn a_longer_chain_is_named_by_its_last_certificate() {
        let old_root = ca("Old Root", None);
        let cross_signed = ca("New Root", Some(&old_root));
        let intermediate = ca("Intermediate", Some(&cross_signed));
        let long = format!("{}{}", chain(&intermediate), cross_signed.pem);
        assert!(issued_under(long.as_bytes(), "Old Root"));
        assert!(!issued_under(long.as_bytes(), "New Root"));
    }

    #[test]
    fn a_leaf_alone_or_garbage_matches_nothing() {
        let root = ca("Root", None);
        let full = chain(&ca("Intermediate", Some(&root)));
        let leaf_only = full
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap();
        assert!(!issued_under(leaf_only.as_bytes(), "Intermediate"));
        assert!(!issued_under(b"not a certificate", "Root"));
        assert!(!issued_under(b"", ""));
    }

    #[test]
    fn chains_of_one_certificate_share_its_leaf() {
        let (root_a, root_b) = (ca("Root CA A", None), ca("Root CA B", None));
        let default = chain(&ca("Intermediate A", Some(&root_a)));
        let (default_leaf, _) = default.split_once("-----END CERTIFICATE-----\n").unwrap();
        let alternate = format!("{default_leaf}-----END CERTIFICATE-----\n{}", root_b.pem);
        assert_eq!(leaf(default.as_bytes()), leaf(alternate.as_bytes()));
        let other = chain(&ca("Intermediate B", Some(&root_b)));
        assert_ne!(leaf(default.as_bytes()), leaf(other.as_bytes()));
        assert!(leaf(default.as_bytes()).is_some());
    }

    #[test]
    fn alternate_links_are_read_from_every_link_header() {
        let mut headers = HeaderMap::new();
        let link = |value: &str| http::HeaderValue::from_str(value).unwrap();
        headers.append(
            http::header::LINK,
            link("<https://ca.test/dir>;rel=\"index\""),
        );
        headers.append(
            http::header::LINK,
            link("<https://ca.test/cert/1/1>;rel=\"alternate\""),
        );
        headers.append(
            http::header::LINK,
            link("</cert/1/2>; rel=alternate, <https://ca.test/a,b>;title=\"x, y\";rel=\"up alternate\""),
        );
        let base: Uri = "https://ca.test:14000/cert/1".parse().unwrap();
        assert_eq!(
            alternate_links(&headers, &base),
            [
                "https://ca.test/cert/1/1",
                "https://ca.test:14000/cert/1/2",
                "https://ca.test/a,b"
            ]
        );
    }
}
