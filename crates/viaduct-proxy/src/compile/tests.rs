use super::*;
use viaduct_config::{parse_document, Format, Origin};

fn ctx(eps: &[(&str, bool)]) -> CompileContext {
    CompileContext {
        entry_points: eps
            .iter()
            .map(|(name, as_default)| EntryPointInfo {
                name: name.to_string(),
                as_default: *as_default,
                protocol: Protocol::Tcp,
                port: 80,
                default_tls: None,
                redirect: None,
            })
            .collect(),
        default_transport: TransportSettings::from_static(&Default::default()),
        tls: Arc::new(TlsShared::new().unwrap()),
        api: None,
        observe: Default::default(),
        tcp_transport: Default::default(),
    }
}

fn dynamic(yaml: &str) -> DynamicConfig {
    parse_document(yaml, Format::Yaml, Origin::Inline("test")).unwrap()
}

fn routers_on(snapshot: &Snapshot, ep: usize) -> Vec<String> {
    snapshot.entry_points[ep]
        .routers
        .iter()
        .map(|(_, _, r)| r.router.clone())
        .collect()
}

const BASE: &str = r#"
http:
  services:
    s@file:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:1"}]
"#;

#[test]
fn errors_stay_local() {
    let yaml = format!(
            "{BASE}  routers:\n    good@file: {{rule: \"Host(`a`)\", service: s@file}}\n    badrule@file: {{rule: \"Host(a)\", service: s@file}}\n    missing@file: {{rule: \"Host(`b`)\", service: nope@file}}\n    mw@file: {{rule: \"Host(`c`)\", service: s@file, middlewares: [auth@file]}}\n    high@file: {{rule: \"Host(`d`)\", service: s@file, priority: 9223372036854775000}}\n"
        );
    let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
    assert_eq!(routers_on(&snapshot, 0), vec!["good@file".to_string()]);
    for bad in ["badrule@file", "missing@file", "mw@file", "high@file"] {
        assert!(
            snapshot
                .status
                .errors
                .contains_key(&format!("http.routers.{bad}")),
            "{bad} should be reported: {:?}",
            snapshot.status.errors
        );
    }
}

#[test]
fn weighted_cycles_are_refused() {
    let yaml = r#"
http:
  routers:
    r@file: {rule: "PathPrefix(`/`)", service: a@file}
  services:
    a@file:
      weighted:
        services: [{name: b@file}]
    b@file:
      weighted:
        services: [{name: a@file}]
"#;
    let snapshot = compile(&dynamic(yaml), &ctx(&[("web", false)]), None, 1);
    assert!(routers_on(&snapshot, 0).is_empty());
    let message = &snapshot.status.errors["http.routers.r@file"][0];
    assert!(message.contains("cycle"), "{message}");
}

#[test]
fn default_entry_points() {
    let yaml =
        format!("{BASE}  routers:\n    r@file: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n");
    // No entry point flagged asDefault: every TCP entry point but `traefik`.
    let snapshot = compile(
        &dynamic(&yaml),
        &ctx(&[("web", false), ("traefik", false), ("other", false)]),
        None,
        1,
    );
    assert_eq!(routers_on(&snapshot, 0).len(), 1);
    assert!(routers_on(&snapshot, 1).is_empty());
    assert_eq!(routers_on(&snapshot, 2).len(), 1);
    // With asDefault, only those.
    let snapshot = compile(
        &dynamic(&yaml),
        &ctx(&[("web", false), ("main", true)]),
        None,
        1,
    );
    assert!(routers_on(&snapshot, 0).is_empty());
    assert_eq!(routers_on(&snapshot, 1).len(), 1);
}

#[test]
fn unknown_entry_point_is_a_warning_when_others_exist() {
    let yaml = format!(
            "{BASE}  routers:\n    r@file: {{rule: \"PathPrefix(`/`)\", service: s@file, entryPoints: [web, nope]}}\n    z@file: {{rule: \"PathPrefix(`/`)\", service: s@file, entryPoints: [nope]}}\n"
        );
    let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
    assert_eq!(routers_on(&snapshot, 0), vec!["r@file".to_string()]);
    assert!(snapshot.status.warnings.contains_key("http.routers.r@file"));
    assert!(snapshot.status.errors.contains_key("http.routers.z@file"));
}

#[test]
fn equal_priorities_follow_provider_precedence() {
    let yaml = format!(
            "{BASE}  routers:\n    a@file: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n    b@docker: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n    c@unknownprovider: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n"
        );
    let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
    assert_eq!(
        routers_on(&snapshot, 0),
        vec!["b@docker", "a@file", "c@unknownprovider"]
    );
}

#[test]
fn transports_and_balancer_state_carry_over() {
    let yaml =
        format!("{BASE}  routers:\n    r@file: {{rule: \"PathPrefix(`/`)\", service: s@file}}\n");
    let config = dynamic(&yaml);
    let first = compile(&config, &ctx(&[("web", false)]), None, 1);
    let second = compile(&config, &ctx(&[("web", false)]), Some(&first), 2);
    assert!(Arc::ptr_eq(
        &first.transports[DEFAULT_TRANSPORT],
        &second.transports[DEFAULT_TRANSPORT]
    ));
}

#[test]
fn cert_resolver_routers_ask_for_their_domains() {
    let yaml = format!(
        "{BASE}  routers:\n    hosts@file: {{rule: \"Host(`A.example.com`) || (Host(`b.example.com`) && Path(`/x`))\", service: s@file, tls: {{certResolver: le}}}}\n    domains@file: {{rule: \"Host(`c.example.com`)\", service: s@file, tls: {{certResolver: le, domains: [{{main: \"*.d.example.com\", sans: [d.example.com]}}, {{main: e.example.com}}]}}}}\n    plain-tls@file: {{rule: \"Host(`f.example.com`)\", service: s@file, tls: {{}}}}\n"
    );
    let snapshot = compile(&dynamic(&yaml), &ctx(&[("web", false)]), None, 1);
    let request = |main: &str, sans: &[&str]| CertificateRequest {
        resolver: "le".into(),
        main: main.into(),
        sans: sans.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        snapshot.certificate_requests,
        vec![
            request("*.d.example.com", &["d.example.com"]),
            request("a.example.com", &["b.example.com"]),
            request("e.example.com", &[]),
        ]
    );
    assert!(
        snapshot.status.warnings.is_empty(),
        "{:?}",
        snapshot.status.warnings
    );
}
