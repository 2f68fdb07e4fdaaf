use std::path::{Path, PathBuf};

use viaduct_config::ConfigError;

/// A provider that cannot be built from its static options.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("providers.file: `filename` and `directory` are mutually exclusive, set only one")]
    FileBothSources,
    #[error("providers.file: one of `filename` or `directory` is required")]
    FileNoSource,
}

/// A configuration file (or directory) that could not be used. Each names its path; parse
/// errors also carry the line and key when known.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list configuration directory {}: {source}", path.display())]
    ListDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {}: unsupported extension, expected .yml, .yaml or .toml", path.display())]
    UnsupportedExtension { path: PathBuf },
    /// The template error's display names the file and line.
    #[error("{source}")]
    Template {
        path: PathBuf,
        #[source]
        source: viaduct_template::Error,
    },
    /// The `ConfigError` display already starts with the file name.
    #[error("{source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
}

impl FileError {
    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FileError::Read { path, .. }
            | FileError::ListDirectory { path, .. }
            | FileError::UnsupportedExtension { path }
            | FileError::Template { path, .. }
            | FileError::Parse { path, .. } => path,
        }
    }
}
