use super::*;
use viaduct_config::{parse_document, Format, Origin};
use viaduct_rules::TcpFacts;
use viaduct_tcp::TlsDecision;

fn ctx() -> CompileContext {
    let ep = |name: &str, protocol| EntryPointInfo {
        name: name.to_string(),
        as_default: false,
        protocol,
        port: 80,
        default_tls: None,
        redirect: None,
    };
    CompileContext {
        entry_points: vec![
            ep("web", Protocol::Tcp),
            ep("dns", Protocol::Udp),
            ep("dns2", Protocol::Udp),
        ],
        default_transport: TransportSettings::from_static(&Default::default()),
        tls: Arc::new(TlsShared::new().unwrap()),
        api: None,
        observe: Default::default(),
        tcp_transport: Default::default(),
    }
}

fn compile_yaml(yaml: &str, previous: Option<&Snapshot>) -> Snapshot {
    let config: DynamicConfig = parse_document(yaml, Format::Yaml, Origin::Inline("test")).unwrap();
    compile(&config, &ctx(), previous, 1)
}

const CONFIG: &str = r#"
http:
  routers:
    secure@file: {rule: "Host(`app.test`)", service: s@file, tls: {}}
  services:
    s@file: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}]}}
tcp:
  routers:
    catch-all@file: {rule: "HostSNI(`*`)", service: t, tls: {passthrough: true}}
    db@file: {rule: "HostSNI(`db.test`)", service: t, tls: {}}
    plain@file: {rule: "HostSNI(`*`)", service: t, middlewares: [allow]}
    named-plain@file: {rule: "HostSNI(`x.test`)", service: t}
    missing@file: {rule: "HostSNI(`*`)", service: nope, tls: {}}
    bad-options@file: {rule: "HostSNI(`o.test`)", service: t, tls: {options: nope}}
    udp-ep@file: {rule: "HostSNI(`*`)", service: t, entryPoints: [dns]}
  services:
    t@file: {loadBalancer: {servers: [{address: "127.0.0.1:2"}]}}
    cycle@file: {weighted: {services: [{name: cycle}]}}
    old@file: {loadBalancer: {servers: [{address: "127.0.0.1:2"}], proxyProtocol: {version: 3}}}
  middlewares:
    allow@file: {ipAllowList: {sourceRange: ["10.0.0.0/8"]}}
    broken@file: {inFlightConn: {amount: 0}}
udp:
  routers:
    first@file: {service: u}
    second@file: {service: u, entryPoints: [dns]}
  services:
    u@file: {loadBalancer: {servers: [{address: "127.0.0.1:53"}]}}
"#;

#[test]
fn tcp_and_udp_errors_stay_local() {
    let snapshot = compile_yaml(CONFIG, None);
    let errors = &snapshot.status.errors;
    for object in [
        "tcp.routers.named-plain@file",
        "tcp.routers.missing@file",
        "tcp.routers.bad-options@file",
        "tcp.routers.udp-ep@file",
        "tcp.services.cycle@file",
        "tcp.services.old@file",
        "tcp.middlewares.broken@file",
        "udp.routers.second@file",
    ] {
        assert!(errors.contains_key(object), "{object} in {errors:?}");
    }
    let web = snapshot.entry_points[0].tcp.as_ref().unwrap();
    assert_eq!(web.plain.len(), 1);
    assert_eq!(web.tls.len(), 2);
    assert!(web.udp.is_none());
    for ep in [1, 2] {
        let udp = snapshot.entry_points[ep].tcp.as_ref().unwrap();
        assert_eq!(udp.udp.as_ref().unwrap().name, "first@file");
    }
}

#[test]
fn https_routers_for_a_host_win_over_tcp_routers_then_tcp_catch_all() {
    let snapshot = compile_yaml(CONFIG, None);
    let web = snapshot.entry_points[0].tcp.as_ref().unwrap();
    let route = |sni: &'static str| {
        let facts = TcpFacts {
            sni: Some(sni),
            client_ip: None,
            alpn: &[],
        };
        match web.route_tls(&facts) {
            TlsDecision::Https => "https".to_string(),
            TlsDecision::Tcp(route) => route.name.clone(),
        }
    };
    assert_eq!(route("app.test"), "https");
    assert_eq!(route("db.test"), "db@file");
    assert_eq!(route("other.test"), "catch-all@file");
    assert!(!web.serves_without_peeking());
}

#[test]
fn routers_keep_their_lifetime_across_reloads() {
    let first = compile_yaml(CONFIG, None);
    let second = compile_yaml(CONFIG, Some(&first));
    let lifetime = |s: &Snapshot| {
        s.entry_points[0]
            .tcp
            .as_ref()
            .unwrap()
            .plain
            .iter()
            .next()
            .unwrap()
            .lifetime
            .clone()
    };
    assert!(Arc::ptr_eq(&lifetime(&first), &lifetime(&second)));
}

#[test]
fn entry_points_without_tcp_routers_have_no_tcp_side() {
    let snapshot = compile_yaml("http: {}", None);
    assert!(snapshot.entry_points.iter().all(|ep| ep.tcp.is_none()));
}

#[test]
fn sni_hosts_of_rules() {
    assert_eq!(
        tcp::sni_hosts("HostSNI(`A.test.`) || (hostsni(\"b.test\") && HostSNI(`*`))"),
        vec!["a.test".to_string(), "b.test".to_string()]
    );
    assert!(tcp::sni_hosts("ALPN(`h2`)").is_empty());
}

#[test]
fn tcp_routers_ask_their_resolver_for_their_hosts() {
    let yaml = r#"
tcp:
  routers:
    db@file: {rule: "HostSNI(`DB.test`) || HostSNI(`db2.test`)", service: t, tls: {certResolver: le}}
    listed@file: {rule: "HostSNI(`*`)", service: t, tls: {certResolver: le, domains: [{main: x.test, sans: [y.test]}]}}
    passthrough@file: {rule: "HostSNI(`p.test`)", service: t, tls: {certResolver: le, passthrough: true}}
  services:
    t@file: {loadBalancer: {servers: [{address: "127.0.0.1:2"}]}}
"#;
    let snapshot = compile_yaml(yaml, None);
    let requests: Vec<(String, Vec<String>)> = snapshot
        .certificate_requests
        .iter()
        .map(|r| (r.main.clone(), r.sans.clone()))
        .collect();
    assert_eq!(
        requests,
        vec![
            ("db.test".to_string(), vec!["db2.test".to_string()]),
            ("x.test".to_string(), vec!["y.test".to_string()]),
        ]
    );
}
