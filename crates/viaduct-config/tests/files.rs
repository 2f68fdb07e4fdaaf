//! Real-world static and dynamic files in YAML and TOML.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use viaduct_config::static_config::StaticConfig;
use viaduct_config::{parse_document, DynamicConfig, Format, GoDuration, Origin};

fn fixture(name: &str) -> (String, Origin) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (text, Origin::File(path))
}

fn static_fixture(name: &str, format: Format) -> StaticConfig {
    let (text, origin) = fixture(name);
    parse_document(&text, format, origin).unwrap()
}

fn dynamic_fixture(name: &str, format: Format) -> DynamicConfig {
    let (text, origin) = fixture(name);
    parse_document(&text, format, origin).unwrap()
}

#[test]
fn static_yaml_and_toml_give_equal_models() {
    assert_eq!(
        static_fixture("traefik.yml", Format::Yaml),
        static_fixture("traefik.toml", Format::Toml)
    );
}

#[test]
fn static_file_values_and_defaults() {
    let config = static_fixture("traefik.yml", Format::Yaml);
    let websecure = &config.entry_points["websecure"];
    assert_eq!(websecure.address, ":443");
    assert!(websecure.as_default);
    assert_eq!(
        websecure.forwarded_headers.trusted_ips,
        ["127.0.0.1/32", "192.168.1.0/24"]
    );
    let timeouts = &websecure.transport.responding_timeouts;
    assert_eq!(timeouts.read_timeout, GoDuration::from_secs(30));
    assert_eq!(timeouts.idle_timeout, GoDuration::from_secs(300));
    assert_eq!(timeouts.write_timeout, GoDuration::ZERO);
    assert_eq!(
        websecure.transport.life_cycle.grace_time_out,
        GoDuration::from_secs(20)
    );
    assert_eq!(websecure.http.middlewares, ["secure-headers@file"]);
    assert_eq!(websecure.http.max_header_bytes, 65536);
    assert!(websecure.http.sanitize_path, "default true");
    let web = &config.entry_points["web"];
    assert_eq!(
        web.transport.responding_timeouts.read_timeout,
        GoDuration::from_secs(60)
    );
    assert_eq!(web.http.max_header_bytes, 1 << 20);

    assert_eq!(
        config.providers.providers_throttle_duration,
        GoDuration::from_secs(5)
    );
    let file = config.providers.file.as_ref().unwrap();
    assert_eq!(file.directory.as_deref(), Some("/etc/traefik/dynamic"));
    let docker = config.providers.docker.as_ref().unwrap();
    assert!(!docker.exposed_by_default);
    assert_eq!(docker.endpoint, "unix:///var/run/docker.sock");
    assert_eq!(config.log.level, "INFO");
    assert_eq!(config.log.format, "json");
    let prometheus = config
        .metrics
        .as_ref()
        .unwrap()
        .prometheus
        .as_ref()
        .unwrap();
    assert!(prometheus.add_routers_labels);
    assert_eq!(prometheus.entry_point, "traefik");
    assert_eq!(config.ping.as_ref().unwrap().terminating_status_code, 503);
    assert!(config.servers_transport.insecure_skip_verify);
    assert_eq!(config.servers_transport.max_idle_conns_per_host, 100);
    let filters = config
        .access_log
        .as_ref()
        .unwrap()
        .filters
        .as_ref()
        .unwrap();
    assert_eq!(filters.min_duration.value, Duration::from_millis(10));
}

#[test]
fn unsupported_keys_of_a_real_file() {
    let config = static_fixture("traefik.yml", Format::Yaml);
    let keys = config.unsupported_keys();
    for built in [
        "providers.docker",
        "ping",
        "accessLog",
        "metrics.prometheus",
        "tracing",
    ] {
        assert!(
            !keys.iter().any(|k| k == built),
            "{built} is built: {keys:?}"
        );
    }
    for built in [
        "entryPoints.websecure.http.tls.certResolver",
        "certificatesResolvers.le",
        "entryPoints.web.http.redirections",
        "providers.file",
        "api",
        "log",
        "serversTransport",
        "global.checkNewVersion",
    ] {
        assert!(
            !keys.iter().any(|k| k.starts_with(built)),
            "{built} in {keys:?}"
        );
    }
}

#[test]
fn built_only_config_reports_nothing() {
    let text = "entryPoints:\n  web:\n    address: :8000\n    forwardedHeaders:\n      insecure: true\nproviders:\n  file:\n    filename: dyn.yml\nlog:\n  level: DEBUG\n";
    let config: StaticConfig = parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap();
    assert!(config.unsupported_keys().is_empty());
}

#[test]
fn dynamic_yaml_and_toml_give_equal_models() {
    let yaml = dynamic_fixture("dynamic.yml", Format::Yaml);
    assert_eq!(yaml, dynamic_fixture("dynamic.toml", Format::Toml));
    let http = yaml.http.as_ref().unwrap();
    assert!(http.routers["dashboard"].tls.is_some());
    let lb = http.services["whoami"].load_balancer.as_ref().unwrap();
    assert_eq!(lb.servers.len(), 2);
    assert_eq!(lb.servers[1].weight, Some(2));
    assert!(!lb.pass_host_header);
    let health = lb.health_check.as_ref().unwrap();
    assert_eq!(health.interval, Some(GoDuration::from_secs(10)));
    assert!(http.middlewares["strip-api"].strip_prefix.is_some());
    assert!(
        yaml.tcp.as_ref().unwrap().routers["db"]
            .tls
            .as_ref()
            .unwrap()
            .passthrough
    );
    assert!(yaml.tls.as_ref().unwrap().options["default"].sni_strict);
}

#[test]
fn keys_are_case_insensitive_in_yaml_and_toml_but_names_are_kept() {
    let yaml = "ENTRYPOINTS:\n  Web:\n    ADDRESS: \":80\"\n    forwardedheaders:\n      trustedips: [10.0.0.0/8]\nLog:\n  LEVEL: DEBUG\n";
    let toml = "[entrypoints.Web]\naddress = \":80\"\n[entrypoints.Web.ForwardedHeaders]\nTrustedIPs = [\"10.0.0.0/8\"]\n[LOG]\nLevel = \"DEBUG\"\n";
    let from_yaml: StaticConfig = parse_document(yaml, Format::Yaml, Origin::Inline("y")).unwrap();
    let from_toml: StaticConfig = parse_document(toml, Format::Toml, Origin::Inline("t")).unwrap();
    assert_eq!(from_yaml, from_toml);
    let web = &from_yaml.entry_points["Web"];
    assert_eq!(web.address, ":80");
    assert_eq!(web.forwarded_headers.trusted_ips, ["10.0.0.0/8"]);
    assert_eq!(from_yaml.log.level, "DEBUG");
}

#[test]
fn durations_as_strings_and_integers() {
    let text = "entryPoints:\n  a:\n    address: :1\n    transport:\n      respondingTimeouts:\n        readTimeout: 5\n        writeTimeout: \"7\"\n        idleTimeout: 1m30s\n";
    let config: StaticConfig = parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap();
    let t = &config.entry_points["a"].transport.responding_timeouts;
    assert_eq!(t.read_timeout, GoDuration::from_secs(5));
    assert_eq!(t.write_timeout, GoDuration::from_secs(7));
    assert_eq!(t.idle_timeout, GoDuration::from_secs(90));
}

#[test]
fn lenient_scalars() {
    let text = "entryPoints:\n  a:\n    address: 8080\n    asDefault: \"true\"\n    http:\n      maxHeaderBytes: \"4096\"\n      middlewares: a@file,b@file\n";
    let config: StaticConfig = parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap();
    let a = &config.entry_points["a"];
    assert_eq!(a.address, "8080");
    assert!(a.as_default);
    assert_eq!(a.http.max_header_bytes, 4096);
    assert_eq!(a.http.middlewares, ["a@file", "b@file"]);
}

#[test]
fn a_section_without_value_is_enabled_with_defaults() {
    let text = "providers:\n  docker:\n  file:\n    filename: x.yml\napi:\n";
    let config: StaticConfig = parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap();
    assert_eq!(config.providers.docker, Some(Default::default()));
    assert!(config.api.as_ref().unwrap().dashboard);
}

#[test]
fn every_top_level_section_parses() {
    let text = r#"
global: {checkNewVersion: true}
serversTransport: {spiffe: {ids: [a]}}
tcpServersTransport: {dialTimeout: 10s, tls: {insecureSkipVerify: true}}
entryPoints:
  web:
    address: ":80"
    reusePort: true
    proxyProtocol: {trustedIPs: [127.0.0.1]}
    http3: {advertisedPort: 443}
    http2: {maxConcurrentStreams: 100}
    udp: {timeout: 10s}
    observability: {accessLogs: false}
providers:
  providersThrottleDuration: 2s
  precedence: [file, docker]
  swarm: {}
  kubernetesCRD: {namespaces: [default]}
  kubernetesIngress: {}
  kubernetesIngressNGINX: {}
  kubernetesGateway: {}
  knative: {}
  consulCatalog: {prefix: traefik}
  nomad: {}
  ecs: {}
  http: {endpoint: "http://127.0.0.1:9000"}
  rest: {insecure: true}
  consul: {endpoints: ["127.0.0.1:8500"]}
  etcd: {}
  redis: {}
  zooKeeper: {}
  plugin: {my: {a: 1}}
api: {insecure: true, debug: true}
metrics: {addInternals: true, otlp: {}, datadog: {}, influxDB2: {}, statsD: {}}
ping: {manualRouting: true}
log: {maxSize: 10, otlp: {}}
accessLog: {fields: {defaultMode: keep}}
tracing: {serviceName: x, sampleRate: 0.5}
hostResolver: {cnameFlattening: true}
certificatesResolvers: {ts: {tailscale: {}}}
experimental: {plugins: {demo: {moduleName: github.com/x/y, version: v1}}, otlpLogs: true}
core: {defaultRuleSyntax: v2}
spiffe: {workloadAPIAddr: "unix:///run/spire.sock"}
ocsp: {responderOverrides: {"http://a": "http://b"}}
"#;
    let config: StaticConfig = parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap();
    let keys = config.unsupported_keys();
    for expected in [
        "global.checkNewVersion",
        "serversTransport.spiffe",
        "tcpServersTransport.tls",
        "entryPoints.web.reusePort",
        "entryPoints.web.http3",
        "providers.kubernetesCRD",
        "providers.zooKeeper",
        "providers.plugin",
        "providers.precedence",
        "api.debug",
        "log.maxSize",
        "hostResolver",
        "certificatesResolvers.ts.tailscale",
        "experimental.plugins",
        "experimental.otlpLogs",
        "core.defaultRuleSyntax",
        "spiffe",
        "ocsp",
    ] {
        assert!(keys.iter().any(|k| k == expected), "{expected} in {keys:?}");
    }
    for built in [
        "metrics.otlp",
        "metrics.datadog",
        "metrics.influxDB2",
        "metrics.statsD",
    ] {
        assert!(
            !keys.iter().any(|k| k == built),
            "{built} is built: {keys:?}"
        );
    }
}

#[test]
fn dynamic_router_tls_without_value_means_https() {
    let text = "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      service: s\n      tls:\n";
    let config: DynamicConfig = parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap();
    assert_eq!(
        config.http.unwrap().routers["r"].tls,
        Some(Default::default())
    );
}
