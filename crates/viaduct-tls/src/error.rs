use thiserror::Error;

/// Failures of this crate. Configuration problems are reported as [`crate::TlsIssue`]s instead; these errors are for
/// the few things that have no fallback.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("generating the default certificate: {0}")]
    GenerateDefaultCert(#[from] rcgen::Error),
    #[error("loading the default certificate's key: {0}")]
    DefaultCertKey(rustls::Error),
    #[error("creating the session ticketer: {0}")]
    Ticketer(rustls::Error),
    #[error("reading {what} from {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("parsing {what} from {origin}: {reason}")]
    Pem {
        what: &'static str,
        origin: String,
        reason: String,
    },
    #[error("{what} from {origin} holds no {expected}")]
    Empty {
        what: &'static str,
        origin: String,
        expected: &'static str,
    },
    #[error("certificate from {origin} does not match its key: {source}")]
    KeyMismatch {
        origin: String,
        source: rustls::Error,
    },
    #[error("certificate from {origin} cannot be parsed: {reason}")]
    Certificate { origin: String, reason: String },
}
