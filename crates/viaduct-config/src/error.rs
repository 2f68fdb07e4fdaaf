use std::path::PathBuf;

/// Where a configuration document came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Flags,
    Env,
    Inline(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Flags => f.write_str("command-line flags"),
            Origin::Env => f.write_str("TRAEFIK_* environment variables"),
            Origin::Inline(name) => f.write_str(name),
        }
    }
}

/// A configuration document that could not be read. Always says where and, when known,
/// which key and line.
#[derive(Debug, thiserror::Error)]
#[error("{origin}{}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!(" (key `{key}`)") })]
pub struct ConfigError {
    pub origin: Origin,
    /// Dotted path of the offending key, empty if the document did not parse at all.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}
