//! Reading one YAML or TOML document into a typed model.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::decode::from_value;
use crate::locate::line_of_key;
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

/// Parses `text` as `format` into `T`, naming `origin`, the failing key and its line in errors.
///
/// Keys are matched case-insensitively and scalars leniently (see [`crate::decode_value`]).
/// An empty document yields `T::default()`.
pub fn parse_document<T: DeserializeOwned + Default>(
    text: &str,
    format: Format,
    origin: Origin,
) -> Result<T, ConfigError> {
    let tree = parse_tree(text, format, &origin)?;
    if tree.is_null() {
        return Ok(T::default());
    }
    from_value(tree).map_err(|e| {
        let mut err = e.into_config_error(origin);
        err.line = line_of_key(text, format, &err.key);
        err
    })
}

/// Parses `text` into a value tree without applying any schema.
pub(crate) fn parse_tree(
    text: &str,
    format: Format,
    origin: &Origin,
) -> Result<serde_json::Value, ConfigError> {
    match format {
        Format::Yaml => {
            if text.trim().is_empty() {
                return Ok(serde_json::Value::Null);
            }
            serde_saphyr::from_str(text).map_err(|e| ConfigError {
                origin: origin.clone(),
                key: String::new(),
                line: e
                    .location()
                    .and_then(|l| usize::try_from(l.line()).ok())
                    .filter(|l| *l > 0),
                message: yaml_message(&e.to_string()),
            })
        }
        Format::Toml => toml::from_str(text).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: String::new(),
            line: e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1),
            message: e.message().to_string(),
        }),
    }
}

/// The parser's message without the `error: line L column C:` prefix: the line is reported
/// separately, the column is kept.
fn yaml_message(full: &str) -> String {
    let message = full.strip_prefix("error: ").unwrap_or(full);
    match message
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) => match position.split_once(" column ") {
            Some((_, column)) => format!("column {column}: {rest}"),
            None => rest.to_owned(),
        },
        None => message.to_owned(),
    }
}
