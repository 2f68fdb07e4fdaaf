//! TLS to `https://` collectors (`otlp.http.tls`: `ca`, `cert`, `key`, `insecureSkipVerify`),
//! with rustls on the exporter's blocking socket; built by `viaduct-upstream`, as every other
//! client of the proxy.

use std::sync::Arc;

use rustls::ClientConfig;
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
    /// The error says what could not be read or used. Built as every other client's TLS
    /// (`viaduct_upstream::client_config_from`), the system's roots read once for all.
    pub fn build(options: &ClientTlsOptions) -> Result<ClientTls, String> {
        let tls = viaduct_config::static_config::ClientTls {
            ca: options.ca.clone(),
            cert: options.cert.clone(),
            key: options.key.clone(),
            insecure_skip_verify: options.insecure_skip_verify,
        };
        let config =
            viaduct_upstream::client_config_from(Some(&tls)).map_err(|e| format!("tls: {e}"))?;
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
