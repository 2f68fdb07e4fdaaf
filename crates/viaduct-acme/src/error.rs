use std::path::PathBuf;

/// What went wrong in an ACME resolver, with the object and the reason.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("certificatesResolvers.{resolver}: {message}")]
    Settings { resolver: String, message: String },

    #[error("ACME storage {path}: cannot {action}: {source}")]
    StorageIo {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    #[error("ACME storage {path}: invalid content: {source}")]
    StorageFormat {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("ACME storage {path}: {message}")]
    StorageData { path: PathBuf, message: String },

    #[error("CA certificates {path}: {message}")]
    CaCertificates { path: String, message: String },

    #[error("ACME server {server}: {source}")]
    Protocol {
        server: String,
        source: instant_acme::Error,
    },

    #[error("{domains}: {message}")]
    Order { domains: String, message: String },

    #[error("generating a {key_type} key: {message}")]
    KeyGeneration { key_type: String, message: String },

    #[error("DNS provider {provider}: {message}")]
    Dns { provider: String, message: String },
}
