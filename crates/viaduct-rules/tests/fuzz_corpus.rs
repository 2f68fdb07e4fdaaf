//! Replays the fuzzer's seed corpus (`fuzz/corpus/rule_parser`) as a regression test, so every
//! input that once mattered keeps parsing without a panic under plain `cargo test`.

use std::path::Path;

use viaduct_rules::{parse_http_with, parse_tcp_with, RuleSyntax};

#[test]
fn rule_parser_corpus_parses_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/rule_parser");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        for syntax in [RuleSyntax::V3, RuleSyntax::V2] {
            let _ = parse_http_with(syntax, text);
            let _ = parse_tcp_with(syntax, text);
        }
        seen += 1;
    }
    assert!(
        seen >= 10,
        "the corpus should hold the seed rules, found {seen}"
    );
}
