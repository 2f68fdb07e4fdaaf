//! The file provider's reading and merging, through `load_once`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{router_doc, router_names, rule_of, write, CapturedLogs};
use viaduct_config::static_config;
use viaduct_providers::{FileError, FileProvider, ProviderError};

fn directory_provider(dir: &std::path::Path) -> FileProvider {
    FileProvider::new(&static_config::FileProvider {
        directory: Some(dir.display().to_string()),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn filename_and_directory_are_exclusive() {
    let both = static_config::FileProvider {
        filename: Some("a.yml".into()),
        directory: Some("conf".into()),
        ..Default::default()
    };
    let err = FileProvider::new(&both).unwrap_err();
    assert!(matches!(err, ProviderError::FileBothSources));
    assert!(err.to_string().contains("`filename`") && err.to_string().contains("`directory`"));

    let neither = static_config::FileProvider {
        filename: Some(String::new()),
        ..Default::default()
    };
    let err = FileProvider::new(&neither).unwrap_err();
    assert!(matches!(err, ProviderError::FileNoSource));
}

#[test]
fn directory_is_read_recursively_with_only_config_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("a.yml"), &router_doc("a", "Host(`a`)"));
    write(&root.join("sub/b.yaml"), &router_doc("b", "Host(`b`)"));
    write(
        &root.join("sub/deeper/c.YAML"),
        &router_doc("c", "Host(`c`)"),
    );
    write(
        &root.join("sub/d.Toml"),
        "[http.routers.d]\nrule = \"Host(`d`)\"\nservice = \"svc\"\n",
    );
    write(&root.join("e.json"), "{}");
    write(&root.join("README.md"), "not config");
    write(
        &root.join(".hidden.yml"),
        &router_doc("hidden", "Host(`h`)"),
    );
    write(&root.join(".#a.yml"), "{{ broken");
    write(&root.join(".git/x.yml"), &router_doc("git", "Host(`g`)"));

    let (config, errors) = directory_provider(root).load_once();

    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(router_names(&config), ["a", "b", "c", "d"]);
}

#[test]
fn yaml_and_toml_files_merge_into_one_configuration() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("routers.yml"),
        "http:\n  routers:\n    web:\n      rule: Host(`x`)\n      service: app\n",
    );
    write(
        &dir.path().join("services.toml"),
        "[[http.services.app.loadBalancer.servers]]\nurl = \"http://127.0.0.1:9000\"\n\
         [tcp.services.db.loadBalancer]\nservers = [{ address = \"127.0.0.1:5432\" }]\n",
    );

    let (config, errors) = directory_provider(dir.path()).load_once();

    assert!(errors.is_empty(), "{errors:?}");
    let http = config.http.as_ref().unwrap();
    assert_eq!(http.routers["web"].service, "app");
    let lb = http.services["app"].load_balancer.as_ref().unwrap();
    assert_eq!(lb.servers[0].url, "http://127.0.0.1:9000");
    assert!(config.tcp.as_ref().unwrap().services.contains_key("db"));
}

#[test]
fn duplicate_name_keeps_the_first_file_and_warns_with_both_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("a.yml"),
        &router_doc("dup", "Host(`first`)"),
    );
    write(
        &dir.path().join("b.toml"),
        "[http.routers.dup]\nrule = \"Host(`second`)\"\n",
    );
    let (logs, _guard) = CapturedLogs::start();

    let (config, errors) = directory_provider(dir.path()).load_once();

    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rule_of(&config, "dup").unwrap(), "Host(`first`)");
    let warnings = logs.lines_with("http.routers.dup");
    assert_eq!(warnings.len(), 1, "{}", logs.text());
    assert!(warnings[0].contains("WARN"));
    assert!(warnings[0].contains("a.yml") && warnings[0].contains("b.toml"));
}

#[test]
fn load_once_reports_every_bad_file_and_keeps_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("good.yml"),
        &router_doc("good", "Host(`g`)"),
    );
    write(&dir.path().join("bad.yml"), "http:\n  routers: [\n");
    write(
        &dir.path().join("bad.toml"),
        "[http.routers.r]\nrule = \"x\"\nrule = \"y\"\n",
    );
    write(&dir.path().join("unknown.yml"), "http:\n  routerz: {}\n");

    let (config, errors) = directory_provider(dir.path()).load_once();

    assert_eq!(router_names(&config), ["good"]);
    let mut named: Vec<String> = errors
        .iter()
        .map(|e| e.path().file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    named.sort();
    assert_eq!(named, ["bad.toml", "bad.yml", "unknown.yml"]);
    for error in &errors {
        assert!(matches!(error, FileError::Parse { .. }));
        let text = error.to_string();
        assert!(text.contains(&error.path().display().to_string()), "{text}");
    }
    let toml_error = errors
        .iter()
        .find(|e| e.path().ends_with("bad.toml"))
        .unwrap();
    // The line number itself is viaduct-config's business; it must be there.
    let text = toml_error.to_string();
    let after_name = text.split("bad.toml:").nth(1).unwrap_or_default();
    assert!(
        after_name.starts_with(|c: char| c.is_ascii_digit()),
        "{text}"
    );
}

#[test]
fn missing_filename_and_unknown_extension_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yml");
    let provider = FileProvider::new(&static_config::FileProvider {
        filename: Some(missing.display().to_string()),
        ..Default::default()
    })
    .unwrap();
    let (config, errors) = provider.load_once();
    assert!(config.is_empty());
    assert!(matches!(&errors[..], [FileError::Read { path, .. }] if *path == missing));

    let odd = dir.path().join("dynamic.conf");
    write(&odd, &router_doc("r", "Host(`r`)"));
    let provider = FileProvider::new(&static_config::FileProvider {
        filename: Some(odd.display().to_string()),
        ..Default::default()
    })
    .unwrap();
    let (_, errors) = provider.load_once();
    assert!(matches!(
        &errors[..],
        [FileError::UnsupportedExtension { .. }]
    ));
}

#[test]
fn files_are_go_templates_rendered_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("VIADUCT_FILE_LOAD_TEST_HOST", "templated.example.com");
    write(
        &dir.path().join("tpl.yml"),
        concat!(
            "http:\n  routers:\n",
            "    r:\n      rule: \"Host(`{{ env \"VIADUCT_FILE_LOAD_TEST_HOST\" }}`)\"\n",
            "      service: s\n",
            "{{- range $i := until 2 }}\n",
            "    gen{{ $i }}:\n      rule: \"Host(`h{{ $i }}.example.com`)\"\n      service: s\n",
            "{{- end }}\n",
        ),
    );

    let (config, errors) = directory_provider(dir.path()).load_once();

    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        rule_of(&config, "r").unwrap(),
        "Host(`templated.example.com`)"
    );
    assert_eq!(rule_of(&config, "gen0").unwrap(), "Host(`h0.example.com`)");
    assert_eq!(rule_of(&config, "gen1").unwrap(), "Host(`h1.example.com`)");
}

#[test]
fn a_template_error_names_the_file_and_line_and_spares_the_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    write(
        &bad,
        "http:\n  routers:\n    r:\n      rule: \"{{ nope }}\"\n",
    );
    write(
        &dir.path().join("good.yml"),
        &router_doc("ok", "Host(`ok`)"),
    );

    let (config, errors) = directory_provider(dir.path()).load_once();

    assert_eq!(router_names(&config), ["ok"]);
    let [FileError::Template { path, source }] = errors.as_slice() else {
        panic!("{errors:?}");
    };
    assert_eq!(path, &bad);
    assert_eq!(source.line, 4);
    let message = errors[0].to_string();
    assert!(
        message.contains("bad.yml:4") && message.contains("function \"nope\" not defined"),
        "{message}"
    );
}

#[test]
fn origins_name_the_file_and_line_of_each_object() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("a.yml");
    write(
        &yaml,
        "# routes\nhttp:\n  routers:\n    api:\n      rule: Host(`a`)\n      service: svc\n  services:\n    svc:\n      loadBalancer:\n        servers:\n          - url: http://127.0.0.1:1\n",
    );
    let toml = dir.path().join("b.toml");
    write(
        &toml,
        "[http.routers.api]\nrule = \"Host(`b`)\"\nservice = \"svc\"\n\n[tcp.routers.db]\nrule = \"HostSNI(`*`)\"\nservice = \"db\"\n",
    );
    let (_, origins, errors) = directory_provider(dir.path()).load_once_with_origins();
    assert!(errors.is_empty(), "{errors:?}");
    let api = origins.get("http.routers.api").unwrap();
    assert_eq!((api.file.as_path(), api.line), (yaml.as_path(), Some(4)));
    assert_eq!(api.to_string(), format!("{}:4", yaml.display()));
    let svc = origins.get("http.services.svc").unwrap();
    assert_eq!((svc.file.as_path(), svc.line), (yaml.as_path(), Some(8)));
    let db = origins.get("tcp.routers.db").unwrap();
    assert_eq!((db.file.as_path(), db.line), (toml.as_path(), Some(5)));
    assert!(origins.get("http.routers.missing").is_none());
}
