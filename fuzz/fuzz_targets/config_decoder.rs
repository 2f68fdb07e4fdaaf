//! Decodes arbitrary text as dynamic and static configuration (YAML and TOML) and as flat
//! `key=value` pairs (the flags / labels / KV decoder): errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use viaduct_config::{decode_flat, parse_document, DynamicConfig, Format, Origin, StaticConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Yaml, Format::Toml] {
        let _ = parse_document::<DynamicConfig>(text, format, Origin::Inline("fuzz"));
        let _ = parse_document::<StaticConfig>(text, format, Origin::Inline("fuzz"));
    }
    let pairs: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = decode_flat::<StaticConfig>(&pairs, Origin::Flags);
    let _ = decode_flat::<DynamicConfig>(&pairs, Origin::Flags);
});
