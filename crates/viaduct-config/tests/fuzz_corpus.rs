//! Replays the fuzzer's seed corpus (`fuzz/corpus/config_decoder`) as a regression test: real
//! configuration files decode, and nothing panics.

use std::path::Path;

use viaduct_config::{decode_flat, parse_document, DynamicConfig, Format, Origin, StaticConfig};

#[test]
fn config_decoder_corpus_decodes_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config_decoder");
    let mut decoded = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for format in [Format::Yaml, Format::Toml] {
            let dynamic = parse_document::<DynamicConfig>(&text, format, Origin::Inline("corpus"));
            let stat = parse_document::<StaticConfig>(&text, format, Origin::Inline("corpus"));
            if Format::from_path(&path) == Some(format) && (dynamic.is_ok() || stat.is_ok()) {
                decoded += 1;
            }
        }
        let pairs: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let _ = decode_flat::<StaticConfig>(&pairs, Origin::Flags);
    }
    assert!(
        decoded >= 4,
        "the corpus's real configuration files should decode, {decoded} did"
    );
}
