//! Reading one YAML or TOML document into a typed model.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{ConfigError, Origin};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Toml,
}

impl Format {
    /// The format a file's extension names (`.yml`, `.yaml`, `.toml`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yml" | "yaml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Parses `text` as `format` into `T`, naming `origin` and the failing key in errors.
pub fn parse_document<T: DeserializeOwned + Default>(
    text: &str,
    format: Format,
    origin: Origin,
) -> Result<T, ConfigError> {
    let tree: serde_json::Value = match format {
        Format::Yaml => {
            if text.trim().is_empty() {
                return Ok(T::default());
            }
            serde_saphyr::from_str(text).map_err(|e| ConfigError {
                origin: origin.clone(),
                key: String::new(),
                line: None,
                message: e.to_string(),
            })?
        }
        Format::Toml => toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: String::new(),
            line: e.span().map(|s| text[..s.start].lines().count().max(1)),
            message: e.message().to_string(),
        })?,
    };
    if tree.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(tree).map_err(|e| ConfigError {
        origin,
        key: String::new(),
        line: None,
        message: e.to_string(),
    })
}
