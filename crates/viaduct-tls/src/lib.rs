//! TLS termination for Viaduct: the certificate store (selection by SNI), Traefik's TLS options compiled to rustls
//! server configurations, and the process-wide state (default certificate, session cache, ticketer) that outlives
//! configuration snapshots.
//!
//! The caller peeks the ClientHello (`tokio_rustls::LazyConfigAcceptor`), asks [`TlsRuntime::server_config`] for the
//! configuration matching its SNI and finishes the handshake with it, or drops the connection on `None`.

#![forbid(unsafe_code)]

mod acme;
mod client_auth;
mod error;
mod names;
mod options;
mod pem;
mod runtime;
mod served;
mod shared;
mod store;

pub use acme::{
    AcmeCertificate, AcmeState, CertificateRequest, ACME_TLS_ALPN, HTTP_CHALLENGE_PREFIX,
};
pub use error::TlsError;
pub use runtime::TlsRuntime;
pub use served::ServedCertificate;
pub use shared::{TlsShared, DEFAULT_CERT_COMMON_NAME};

/// What one TLS router contributes to option selection: the exact hosts its rule names (lower-case; `*.x.com`
/// wildcards allowed) and the name of its TLS options (`""` means `default`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsRoute {
    pub hosts: Vec<String>,
    pub options: String,
}

/// A problem found while compiling the TLS configuration. Errors make the named object unusable; warnings describe a
/// deviation that was worked around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIssue {
    /// The configuration object, e.g. `tls.options.foo@file` or `tls.certificates[2]`.
    pub object: String,
    pub message: String,
    pub is_error: bool,
}

impl TlsIssue {
    pub(crate) fn error(object: impl Into<String>, message: impl Into<String>) -> TlsIssue {
        TlsIssue {
            object: object.into(),
            message: message.into(),
            is_error: true,
        }
    }

    pub(crate) fn warning(object: impl Into<String>, message: impl Into<String>) -> TlsIssue {
        TlsIssue {
            object: object.into(),
            message: message.into(),
            is_error: false,
        }
    }
}

impl std::fmt::Display for TlsIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = if self.is_error { "error" } else { "warning" };
        write!(f, "{level}: {}: {}", self.object, self.message)
    }
}

/// The crypto provider every configuration is built with: ring only, whatever else is linked into the process.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
