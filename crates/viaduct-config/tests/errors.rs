//! Errors name the source, the dotted key and, for files, the line.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use viaduct_config::static_config::StaticConfig;
use viaduct_config::{parse_document, ConfigError, DynamicConfig, Format, Origin};

fn static_error(text: &str, format: Format) -> ConfigError {
    parse_document::<StaticConfig>(text, format, Origin::File(PathBuf::from("traefik.yml")))
        .unwrap_err()
}

#[test]
fn misspelled_key_in_yaml_names_path_and_line() {
    let text = "log:\n  level: INFO\nentryPoints:\n  web:\n    adress: \":80\"\n";
    let err = static_error(text, Format::Yaml);
    assert_eq!(err.key, "entryPoints.web.adress");
    assert_eq!(err.line, Some(5));
    let shown = err.to_string();
    assert!(
        shown.starts_with(
            "traefik.yml:5 (key `entryPoints.web.adress`): unknown field `adress`, expected one of"
        ),
        "{shown}"
    );
    assert!(shown.contains("`address`"), "{shown}");
}

#[test]
fn misspelled_key_in_toml_names_path_and_line() {
    let text = "[log]\nlevel = \"INFO\"\n\n[entryPoints.web]\naddress = \":80\"\n[entryPoints.web.transport.respondingTimeouts]\nreadTimeOut = \"1s\"\nwriteTimout = \"1s\"\n";
    let err = static_error(text, Format::Toml);
    assert_eq!(
        err.key,
        "entryPoints.web.transport.respondingTimeouts.writeTimout"
    );
    assert_eq!(err.line, Some(8));
}

#[test]
fn misspelled_top_level_section_fails() {
    let err = static_error("entrypoint:\n  web:\n    address: :80\n", Format::Yaml);
    assert_eq!(err.key, "entrypoint");
    assert_eq!(err.line, Some(1));
    assert!(err.message.contains("unknown field `entrypoint`"));
}

#[test]
fn bad_value_names_its_key() {
    let text = "entryPoints:\n  web:\n    address: :80\n    transport:\n      respondingTimeouts:\n        readTimeout: soon\n";
    let err = static_error(text, Format::Yaml);
    assert_eq!(
        err.key,
        "entryPoints.web.transport.respondingTimeouts.readTimeout"
    );
    assert_eq!(err.line, Some(6));
    assert!(err.message.contains("duration"), "{}", err.message);
}

#[test]
fn bad_key_inside_a_list_names_the_index() {
    let text = "http:\n  services:\n    s:\n      loadBalancer:\n        servers:\n          - url: http://a\n          - url: http://b\n            wieght: 2\n";
    let err =
        parse_document::<DynamicConfig>(text, Format::Yaml, Origin::Inline("dyn.yml")).unwrap_err();
    assert_eq!(err.key, "http.services.s.loadBalancer.servers[1].wieght");
    assert_eq!(err.line, Some(8));
}

#[test]
fn yaml_syntax_error_has_a_line() {
    let err = static_error("log:\n  level: INFO\n entryPoints: [\n", Format::Yaml);
    assert!(err.line.is_some(), "{err}");
    assert!(err.key.is_empty());
}

#[test]
fn toml_syntax_error_has_a_line() {
    let err = static_error("[log]\nlevel = \"INFO\"\nformat = \n", Format::Toml);
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn dynamic_configuration_in_the_static_file_is_explained() {
    for root in ["http", "tcp", "udp", "tls", "HTTP"] {
        let text = format!("entryPoints:\n  web:\n    address: :80\n{root}:\n  routers: {{}}\n");
        let err = static_error(&text, Format::Yaml);
        assert_eq!(
            err.message,
            format!("`{root}` is dynamic (routing) configuration; put it in a file read by providers.file")
        );
        assert_eq!(err.key, root);
        assert_eq!(err.line, Some(4));
    }
}

#[test]
fn static_configuration_in_a_dynamic_file_is_explained() {
    let text = "entryPoints:\n  web:\n    address: :80\n";
    let err =
        parse_document::<DynamicConfig>(text, Format::Yaml, Origin::Inline("dyn.yml")).unwrap_err();
    assert!(
        err.message.contains("static (install) configuration"),
        "{err}"
    );
}

#[test]
fn duplicate_keys_differing_by_case_are_rejected() {
    let err = static_error("log:\n  level: INFO\n  LEVEL: DEBUG\n", Format::Yaml);
    assert!(err.message.contains("duplicate"), "{err}");
}

#[test]
fn yaml_syntax_error_reads_well() {
    let err = static_error("log:\n  level: INFO\n entryPoints: [\n", Format::Yaml);
    assert!(
        err.to_string().starts_with("traefik.yml:3: column 2: "),
        "{err}"
    );
    let err = static_error("log: [1, 2]\n", Format::Yaml);
    assert_eq!(
        err.to_string(),
        "traefik.yml:1 (key `log`): invalid type: sequence, expected a section (map of options)"
    );
}
