use std::path::PathBuf;
use std::time::Duration;

/// Everything the harness can fail on, with the object and the reason.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("template placeholder `{{{{{placeholder}}}}}` is unknown (known: port:NAME, addr:NAME, dynamic_file, dir, or a variable set with Launch::var)")]
    UnknownPlaceholder { placeholder: String },
    #[error("template has an unterminated placeholder starting at byte {offset}")]
    UnterminatedPlaceholder { offset: usize },
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot spawn {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} did not happen within {timeout:?}{detail}")]
    Timeout {
        what: String,
        timeout: Duration,
        detail: String,
    },
    #[error("the proxy exited early with {status}; stderr:\n{stderr}\nstdout:\n{stdout}")]
    ExitedEarly {
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("TLS setup: {reason}")]
    Tls { reason: String },
    #[error("I/O on {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("HTTP exchange with {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("malformed HTTP response from {peer}: {reason}")]
    MalformedResponse { peer: String, reason: String },
    #[error("WebSocket exchange with {url} failed: {reason}")]
    WebSocket { url: String, reason: String },
    #[error("echo report is not valid JSON: {source}; body was: {body}")]
    EchoReport {
        body: String,
        source: serde_json::Error,
    },
}

impl TestkitError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
