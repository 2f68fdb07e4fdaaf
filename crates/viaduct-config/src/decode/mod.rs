//! Decoding a JSON value tree into a typed model the way Traefik reads configuration.
//!
//! Every source (YAML, TOML, flags, environment, labels, KV) is first turned into a
//! `serde_json::Value` tree and then decoded here, so all of them share the same rules:
//!
//! - **Keys of structs match case-insensitively** (an exact match wins over a case-folded one);
//!   keys of maps (router names, entry point names…) are kept as written.
//! - **Unknown keys are errors** (the models use `deny_unknown_fields`); every error carries
//!   the dotted path of the offending key (`entryPoints.web.adress`, `servers[0].url`).
//! - **Lenient scalars**, as Go's configuration loaders: a string `"true"` or `"10"` is accepted
//!   where a bool or number is expected, a number or bool where a string is expected.
//! - **Lists** may be given as a sequence, as one comma-separated string (`web,websecure`), or
//!   as a map of indices (`{"0": …, "1": …}`, what indexed flat keys produce).
//! - **Sections** (structs) given as `true` or an empty string are enabled with their defaults
//!   (`--providers.docker`); `null` means "present, all defaults".

pub(crate) mod access;
mod value_de;

use std::fmt;

use serde::de::DeserializeOwned;

use crate::schema::{enable_empty_sections, schema_of};
use crate::{ConfigError, Origin};

pub(crate) use value_de::ValueDeserializer;

/// Decodes `value` into `T` with the case-insensitive, lenient rules described in this module.
/// Errors name `origin` and the dotted path of the failing key.
///
/// Other crates use this to decode option trees kept untyped in the model (e.g. middleware
/// options) with the same rules as the configuration files.
pub fn decode_value<T: DeserializeOwned>(
    value: serde_json::Value,
    origin: Origin,
) -> Result<T, ConfigError> {
    from_value(value).map_err(|e| e.into_config_error(origin))
}

/// An error raised while decoding a value tree, with the path where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Dotted path of the offending key; `None` until an enclosing deserializer sets it.
    pub path: Option<String>,
    pub message: String,
}

pub(crate) fn from_value<T: DeserializeOwned>(
    mut value: serde_json::Value,
) -> Result<T, DecodeError> {
    if let Some(schema) = schema_of::<T>() {
        enable_empty_sections(&mut value, &schema);
    }
    T::deserialize(ValueDeserializer::new(value, String::new()))
}

impl DecodeError {
    /// Records `path` unless a deeper deserializer already recorded a more precise one.
    pub(crate) fn at(mut self, path: &str) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_owned());
        }
        self
    }

    pub(crate) fn into_config_error(self, origin: Origin) -> ConfigError {
        ConfigError {
            origin,
            key: self.path.unwrap_or_default(),
            line: None,
            message: self.message,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) if !p.is_empty() => write!(f, "{p}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DecodeError {}

impl serde::de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError {
            path: None,
            message: msg.to_string(),
        }
    }
}

/// `parent.key`, or `key` at the root.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}
