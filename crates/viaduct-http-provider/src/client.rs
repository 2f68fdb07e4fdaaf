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
    let config = viaduct_upstream::client_config_from(tls)
        .map_err(|e| HttpProviderError::Tls(e.to_string()))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}
