//! Decoding a middleware's untyped options with the configuration's rules.

use serde::de::DeserializeOwned;
use viaduct_config::{decode_value, Origin};

/// Decodes `options` into `T` (case-insensitive keys, lenient scalars, unknown keys refused).
/// The error names the offending option.
pub(crate) fn decode<T: DeserializeOwned>(options: &serde_json::Value) -> Result<T, String> {
    // `addPrefix: {}` and a bare `addPrefix:` both mean "all defaults".
    let value = if options.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        options.clone()
    };
    decode_value(value, Origin::Inline("middleware options")).map_err(|e| {
        if e.key.is_empty() {
            e.message
        } else {
            format!("option {}: {}", e.key, e.message)
        }
    })
}
