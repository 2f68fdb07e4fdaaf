//! Static loading: file > flags > env, search order, flag forms, env segmentation.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use viaduct_config::load::{default_search_dirs, load_static_with};
use viaduct_config::{load_static, GoDuration, StaticSource};

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn env(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_found_file_wins_over_flags_and_env_and_reports_ignored_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "traefik.yml", "log:\n  level: WARN\n");
    let loaded = load_static_with(
        &args(&["--log.level=DEBUG", "--providers.docker"]),
        &env(&[("TRAEFIK_LOG_LEVEL", "INFO")]),
        dir.path(),
        &[dir.path().to_path_buf()],
    )
    .unwrap();
    assert_eq!(loaded.source, StaticSource::File(file));
    assert_eq!(loaded.config.log.level, "WARN");
    assert_eq!(
        loaded.ignored_flags,
        ["--log.level=DEBUG", "--providers.docker"]
    );
    assert_eq!(
        loaded.config.entry_points["http"].address, ":80",
        "implicit"
    );
}

#[test]
fn config_file_flag_in_all_spellings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "custom.toml", "[log]\nlevel = \"DEBUG\"\n");
    write(dir.path(), "traefik.yml", "log:\n  level: WARN\n");
    for flag in [
        vec!["--configFile=custom.toml"],
        vec!["--configfile", "custom.toml"],
        vec!["--CONFIGFILE=custom.toml"],
    ] {
        let loaded =
            load_static_with(&args(&flag), &[], dir.path(), &[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            loaded.source,
            StaticSource::File(dir.path().join("custom.toml"))
        );
        assert_eq!(loaded.config.log.level, "DEBUG");
        assert!(loaded.ignored_flags.is_empty());
    }
    let err =
        load_static_with(&args(&["--configFile=missing.yml"]), &[], dir.path(), &[]).unwrap_err();
    assert_eq!(err.key, "configFile");
}

#[test]
fn search_order_directories_then_names() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    write(second.path(), "traefik.toml", "[log]\nlevel = \"INFO\"\n");
    let viaduct = write(first.path(), "viaduct.yml", "log:\n  level: WARN\n");
    let dirs = [first.path().to_path_buf(), second.path().to_path_buf()];
    let loaded = load_static_with(&[], &[], first.path(), &dirs).unwrap();
    assert_eq!(loaded.source, StaticSource::File(viaduct));

    let traefik = write(first.path(), "traefik.yaml", "log:\n  level: DEBUG\n");
    let loaded = load_static_with(&[], &[], first.path(), &dirs).unwrap();
    assert_eq!(loaded.source, StaticSource::File(traefik));
    assert_eq!(loaded.config.log.level, "DEBUG");
}

#[test]
fn default_search_dirs_come_from_the_given_environment() {
    let dirs = default_search_dirs(
        &env(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/xdg")]),
        Path::new("/work"),
    );
    assert_eq!(
        dirs,
        [
            PathBuf::from("/etc/traefik"),
            PathBuf::from("/xdg"),
            PathBuf::from("/home/u/.config"),
            PathBuf::from("/work"),
        ]
    );
    let dirs = default_search_dirs(&[], Path::new("/work"));
    assert_eq!(
        dirs,
        [PathBuf::from("/etc/traefik"), PathBuf::from("/work")]
    );
}

#[test]
fn flags_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_static_with(
        &args(&[
            "--entryPoints.web.address=:8000",
            "--entrypoints.websecure.address",
            ":8443",
            "--ENTRYPOINTS.websecure.asDefault",
            "--log.level",
            "DEBUG",
            "--providers.docker",
            "--providers.file.directory=/etc/dyn",
            "--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.1,10.0.0.2",
            "--entryPoints.web.transport.lifeCycle.graceTimeOut=3",
        ]),
        &env(&[("TRAEFIK_LOG_LEVEL", "INFO")]),
        dir.path(),
        &[dir.path().to_path_buf()],
    )
    .unwrap();
    assert_eq!(loaded.source, StaticSource::Flags);
    let config = loaded.config;
    assert_eq!(config.entry_points["web"].address, ":8000");
    assert_eq!(config.entry_points["websecure"].address, ":8443");
    assert!(config.entry_points["websecure"].as_default);
    assert!(
        !config.entry_points.contains_key("http"),
        "declared EPs: no implicit one"
    );
    assert_eq!(config.log.level, "DEBUG");
    assert!(config.providers.docker.is_some());
    assert_eq!(
        config.providers.file.unwrap().directory.as_deref(),
        Some("/etc/dyn")
    );
    assert_eq!(
        config.entry_points["web"].forwarded_headers.trusted_ips,
        ["10.0.0.1", "10.0.0.2"]
    );
    assert_eq!(
        config.entry_points["web"]
            .transport
            .life_cycle
            .grace_time_out,
        GoDuration::from_secs(3)
    );
}

#[test]
fn unknown_flag_is_an_error_naming_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_static_with(
        &args(&["--entryPoints.web.adress=:80"]),
        &[],
        dir.path(),
        &[],
    )
    .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("command-line flags (key `entryPoints.web.adress`)"),
        "{shown}"
    );
    let err = load_static_with(&args(&["stray"]), &[], dir.path(), &[]).unwrap_err();
    assert!(err.message.contains("stray"));
}

#[test]
fn env_vars_when_no_file_and_no_flags() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_static_with(
        &[],
        &env(&[
            ("PATH", "/usr/bin"),
            ("TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", ":80"),
            ("TRAEFIK_ENTRYPOINTS_MY_EP_ADDRESS", ":81"),
            (
                "TRAEFIK_ENTRYPOINTS_MY_EP_FORWARDEDHEADERS_TRUSTEDIPS",
                "10.0.0.0/8,::1",
            ),
            ("traefik_log_level", "INFO"),
            ("TRAEFIK_PROVIDERS_DOCKER", "true"),
            ("TRAEFIK_PROVIDERS_PROVIDERSTHROTTLEDURATION", "1s"),
            ("TRAEFIK_CERTIFICATESRESOLVERS_LE_ACME_EMAIL", "a@b.c"),
            (
                "TRAEFIK_METRICS_PROMETHEUS_HEADERLABELS_USER_ID",
                "X-User-Id",
            ),
        ]),
        dir.path(),
        &[dir.path().to_path_buf()],
    )
    .unwrap();
    assert_eq!(loaded.source, StaticSource::Env);
    let config = loaded.config;
    assert_eq!(config.entry_points["web"].address, ":80");
    let my_ep = &config.entry_points["my_ep"];
    assert_eq!(my_ep.address, ":81");
    assert_eq!(my_ep.forwarded_headers.trusted_ips, ["10.0.0.0/8", "::1"]);
    assert_eq!(config.log.level, "INFO");
    assert!(config.providers.docker.is_some());
    assert_eq!(
        config.providers.providers_throttle_duration,
        GoDuration::from_secs(1)
    );
    assert_eq!(
        config.certificates_resolvers["le"].acme,
        Some(serde_json::json!({"email": "a@b.c"}))
    );
    let prometheus = config.metrics.unwrap().prometheus.unwrap();
    assert_eq!(prometheus.header_labels["user_id"], "X-User-Id");
}

#[test]
fn unknown_env_var_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        load_static_with(&[], &env(&[("TRAEFIK_LOG_LEVL", "INFO")]), dir.path(), &[]).unwrap_err();
    assert_eq!(err.key, "TRAEFIK_LOG_LEVL");
    assert!(
        err.to_string()
            .starts_with("TRAEFIK_* environment variables"),
        "{err}"
    );
}

#[test]
fn nothing_found_is_none_with_plain_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_static_with(
        &[],
        &env(&[("HOME", "/nonexistent")]),
        dir.path(),
        &[dir.path().to_path_buf()],
    )
    .unwrap();
    assert_eq!(loaded.source, StaticSource::None);
    assert!(loaded.config.entry_points.is_empty());
}

#[test]
fn load_static_searches_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "traefik.yml",
        "entryPoints:\n  web:\n    address: :9000\n",
    );
    // HOME and XDG point inside the temp dir so the machine's own files cannot interfere;
    // /etc/traefik is not expected to exist on a test machine.
    let home = dir.path().join("home");
    let loaded = load_static(&[], &env(&[("HOME", home.to_str().unwrap())]), dir.path()).unwrap();
    if !Path::new("/etc/traefik").exists() {
        assert_eq!(loaded.source, StaticSource::File(file));
        assert_eq!(loaded.config.entry_points["web"].address, ":9000");
    }
}

#[test]
fn implicit_internal_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_static_with(
        &args(&["--api.insecure=true", "--entryPoints.web.address=:80"]),
        &[],
        dir.path(),
        &[],
    )
    .unwrap();
    assert_eq!(loaded.config.entry_points["traefik"].address, ":8080");
    let loaded = load_static_with(
        &args(&["--ping", "--ping.manualRouting=true"]),
        &[],
        dir.path(),
        &[],
    )
    .unwrap();
    assert!(!loaded.config.entry_points.contains_key("traefik"));
    assert_eq!(loaded.config.entry_points["http"].address, ":80");
}
