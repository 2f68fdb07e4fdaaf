//! The HTTP(S) client the provider polls with: `tls.ca`, `tls.cert`/`tls.key` and
//! `insecureSkipVerify`, through the same TLS pieces as the proxy's other clients.

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use viaduct_config::static_config::ClientTls;

use crate::HttpProviderError;

pub(crate) type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub(crate) fn build(tls: Option<&ClientTls>) -> Result<Client, HttpProviderError> {
    let provider = viaduct_upstream::crypto_provider();
    let fail = |e: String| HttpProviderError::Tls(e);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?;
    let ca: Vec<String> = tls
        .and_then(|t| t.ca.clone())
        .filter(|ca| !ca.is_empty())
        .into_iter()
        .collect();
    let verified = if tls.is_some_and(|t| t.insecure_skip_verify) {
        builder
            .dangerous()
            .with_custom_certificate_verifier(viaduct_upstream::skip_verification(provider))
    } else {
        let roots = viaduct_upstream::trust_anchors(&ca).map_err(|e| fail(e.to_string()))?;
        builder.with_root_certificates(roots)
    };
    let cert = tls
        .and_then(|t| t.cert.as_deref())
        .filter(|c| !c.is_empty());
    let key = tls.and_then(|t| t.key.as_deref()).filter(|k| !k.is_empty());
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain =
                viaduct_upstream::read_certificates(cert).map_err(|e| fail(e.to_string()))?;
            let key = viaduct_upstream::read_key(key).map_err(|e| fail(e.to_string()))?;
            verified
                .with_client_auth_cert(chain, key)
                .map_err(|e| fail(format!("client certificate: {e}")))?
        }
        (None, None) => verified.with_no_client_auth(),
        _ => return Err(fail("cert and key go together".into())),
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}
