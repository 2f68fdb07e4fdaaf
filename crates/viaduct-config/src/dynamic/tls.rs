use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Domain;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TlsConfig {
    pub certificates: Vec<TlsCertificate>,
    pub options: BTreeMap<String, TlsOptions>,
    pub stores: BTreeMap<String, TlsStore>,
}

impl TlsConfig {
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty() && self.options.is_empty() && self.stores.is_empty()
    }
}

/// `certFile`/`keyFile` hold a file path or inline PEM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TlsCertificate {
    pub cert_file: String,
    pub key_file: String,
    pub stores: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TlsOptions {
    pub min_version: String,
    pub max_version: String,
    pub cipher_suites: Vec<String>,
    pub curve_preferences: Vec<String>,
    pub client_auth: Option<ClientAuth>,
    pub sni_strict: bool,
    pub prefer_server_cipher_suites: Option<bool>,
    pub alpn_protocols: Option<Vec<String>>,
    pub disable_session_tickets: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClientAuth {
    pub ca_files: Vec<String>,
    pub client_auth_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TlsStore {
    pub default_certificate: Option<StoreCertificate>,
    pub default_generated_cert: Option<GeneratedCert>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StoreCertificate {
    pub cert_file: String,
    pub key_file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GeneratedCert {
    pub resolver: String,
    pub domain: Option<Domain>,
}
