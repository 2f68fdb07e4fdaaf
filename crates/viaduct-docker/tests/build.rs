//! Containers → configuration, from `docker inspect` answers captured from a real engine
//! (Docker 20.10, `tests/fixtures`).
#![allow(clippy::unwrap_used)]

use bollard::models::ContainerInspectResponse;
use viaduct_config::static_config::DockerProvider as DockerOptions;
use viaduct_config::DynamicConfig;
use viaduct_docker::{build_configuration, BuildError, BuildSettings, Container, PortBinding};

fn fixture(name: &str) -> Container {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let inspect: ContainerInspectResponse = serde_json::from_str(&text).unwrap();
    Container::from_inspect(inspect).unwrap()
}

fn settings(edit: impl FnOnce(&mut DockerOptions)) -> BuildSettings {
    let mut options = DockerOptions::default();
    edit(&mut options);
    BuildSettings::new(&options).unwrap()
}

fn build(containers: &[Container], settings: &BuildSettings) -> (DynamicConfig, Vec<BuildError>) {
    build_configuration(containers, settings)
}

fn urls(config: &DynamicConfig, service: &str) -> Vec<String> {
    config.http.as_ref().unwrap().services[service]
        .load_balancer
        .as_ref()
        .unwrap()
        .servers
        .iter()
        .map(|s| s.url.clone())
        .collect()
}

/// The compose fixture with `labels` as its only Traefik labels.
fn with_traefik_labels(labels: &[(&str, &str)]) -> Container {
    let mut app = fixture("inspect_compose_healthy.json");
    app.labels.retain(|k, _| !k.starts_with("traefik."));
    for (key, value) in labels {
        app.labels.insert((*key).into(), (*value).into());
    }
    app
}

/// A container on a bridge-like network with its own address.
fn on_network(mut container: Container, id: &str, ip: &str) -> Container {
    container.id = id.into();
    container.name = format!("{}-{id}", container.name);
    container.network_mode = "front".into();
    container.networks = [("front".to_string(), ip.to_string())].into();
    container
}

#[test]
fn inspect_answers_decode() {
    let web1 = fixture("inspect_host_network.json");
    assert_eq!(web1.name, "web1");
    assert!(web1.is_running() && web1.is_healthy() && web1.is_host_network());
    assert_eq!(web1.labels["traefik.enable"], "true");
    assert!(web1.ports.is_empty());

    let app = fixture("inspect_compose_healthy.json");
    assert_eq!(app.health.as_deref(), Some("healthy"));
    assert_eq!(
        app.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        [8080, 9090]
    );
    assert_eq!(app.labels["com.docker.compose.project"], "shop");

    let created = fixture("inspect_created.json");
    assert_eq!(created.status, "created");
    assert!(!created.is_running());
    assert_eq!(created.network_mode, "none");
}

#[test]
fn labels_and_host_network_address() {
    let (config, errors) = build(&[fixture("inspect_host_network.json")], &settings(|_| {}));
    assert!(errors.is_empty(), "{errors:?}");
    let http = config.http.as_ref().unwrap();
    assert_eq!(http.routers["web1"].rule, "Host(`web1.test`)");
    assert_eq!(http.routers["web1"].service, "web1");
    assert_eq!(urls(&config, "web1"), ["http://127.0.0.1:18081"]);
    let server = &http.services["web1"]
        .load_balancer
        .as_ref()
        .unwrap()
        .servers[0];
    assert_eq!((server.port.as_ref(), server.scheme.as_ref()), (None, None));
}

#[test]
fn compose_names_default_rule_and_lowest_port() {
    let (config, errors) = build(
        &[fixture("inspect_compose_healthy.json")],
        &settings(|_| {}),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let http = config.http.as_ref().unwrap();
    assert_eq!(http.routers["web-shop"].rule, "Host(`web-shop`)");
    assert_eq!(http.routers["web-shop"].service, "web-shop");
    assert_eq!(urls(&config, "web-shop"), ["http://127.0.0.1:8080"]);
    assert!(http.middlewares.contains_key("strip"));

    let custom = settings(|o| {
        o.default_rule =
            "Host(`{{ .ContainerName }}.{{ index .Labels \"com.docker.compose.project\" }}`)".into()
    });
    let (config, _) = build(&[fixture("inspect_compose_healthy.json")], &custom);
    assert_eq!(
        config.http.unwrap().routers["web-shop"].rule,
        "Host(`app-web-1.shop`)"
    );
}

#[test]
fn stopped_and_disabled_containers_contribute_nothing() {
    let (config, errors) = build(&[fixture("inspect_created.json")], &settings(|_| {}));
    assert!(errors.is_empty());
    assert!(config.is_empty());
    let mut stopped = fixture("inspect_host_network.json");
    stopped.status = "exited".into();
    assert!(build(&[stopped.clone()], &settings(|_| {})).0.is_empty());
    // allownonrunning keeps the objects, without servers.
    stopped
        .labels
        .insert("traefik.docker.allownonrunning".into(), "true".into());
    let (config, _) = build(&[stopped], &settings(|_| {}));
    assert!(urls(&config, "web1").is_empty());
    assert!(config.http.unwrap().routers.contains_key("web1"));
}

#[test]
fn exposed_by_default_and_enable() {
    let off = settings(|o| o.exposed_by_default = false);
    let containers = [
        fixture("inspect_host_network.json"),
        fixture("inspect_compose_healthy.json"),
    ];
    let (config, _) = build(&containers, &off);
    let http = config.http.unwrap();
    // Only web1 has traefik.enable=true.
    assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["web1"]);
}

#[test]
fn constraints_filter_containers() {
    let only_shop =
        settings(|o| o.constraints = Some(r#"Label("com.docker.compose.project", "shop")"#.into()));
    let containers = [
        fixture("inspect_host_network.json"),
        fixture("inspect_compose_healthy.json"),
    ];
    let (config, _) = build(&containers, &only_shop);
    assert_eq!(
        config.http.unwrap().routers.keys().collect::<Vec<_>>(),
        ["web-shop"]
    );
    let not_shop = settings(|o| {
        o.constraints = Some("!LabelRegex(`com.docker.compose.project`, `^sh`)".into())
    });
    let (config, _) = build(&containers, &not_shop);
    assert_eq!(
        config.http.unwrap().routers.keys().collect::<Vec<_>>(),
        ["web1"]
    );
}

#[test]
fn replicas_merge_into_one_service() {
    let app = fixture("inspect_compose_healthy.json");
    let replicas = [
        on_network(app.clone(), "a1", "10.0.0.2"),
        on_network(app, "a2", "10.0.0.3"),
    ];
    let (config, errors) = build(&replicas, &settings(|_| {}));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        urls(&config, "web-shop"),
        ["http://10.0.0.2:8080", "http://10.0.0.3:8080"]
    );
    assert_eq!(config.http.unwrap().routers.len(), 1);
}

#[test]
fn conflicting_definitions_are_dropped_with_an_error() {
    let mut a = fixture("inspect_host_network.json");
    a.labels.insert(
        "traefik.http.routers.shared.rule".into(),
        "Host(`a`)".into(),
    );
    let mut b = on_network(fixture("inspect_host_network.json"), "b", "10.0.0.9");
    b.labels.insert(
        "traefik.http.routers.shared.rule".into(),
        "Host(`b`)".into(),
    );
    b.labels
        .insert("traefik.http.routers.shared.service".into(), "web1".into());
    a.labels
        .insert("traefik.http.routers.shared.service".into(), "web1".into());
    let (config, errors) = build(&[a, b], &settings(|_| {}));
    let http = config.http.unwrap();
    assert!(!http.routers.contains_key("shared"));
    assert!(http.routers.contains_key("web1"));
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("router shared") && text.contains("web1-b"),
        "{text}"
    );
}

#[test]
fn health_and_allow_empty_services() {
    let mut sick = fixture("inspect_compose_healthy.json");
    sick.health = Some("unhealthy".into());
    assert!(build(&[sick.clone()], &settings(|_| {})).0.is_empty());
    let (config, _) = build(&[sick], &settings(|o| o.allow_empty_services = true));
    assert!(urls(&config, "web-shop").is_empty());
}

#[test]
fn bind_port_ip_uses_the_published_binding() {
    let mut app = on_network(fixture("inspect_compose_healthy.json"), "x", "10.0.0.2");
    app.ports[0].bindings.push(PortBinding {
        host_ip: "127.0.0.5".into(),
        host_port: "18080".into(),
    });
    let (config, _) = build(&[app.clone()], &settings(|o| o.use_bind_port_ip = true));
    assert_eq!(urls(&config, "web-shop"), ["http://127.0.0.5:18080"]);
    let (config, _) = build(&[app], &settings(|_| {}));
    assert_eq!(urls(&config, "web-shop"), ["http://10.0.0.2:8080"]);
}

#[test]
fn tcp_only_labels_create_no_http_router() {
    let app = with_traefik_labels(&[
        ("traefik.tcp.routers.db.rule", "HostSNI(`*`)"),
        ("traefik.tcp.services.db.loadbalancer.server.port", "5432"),
    ]);
    let (config, errors) = build(&[app], &settings(|_| {}));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(config.http.is_none_or(|h| h.is_empty()));
    let tcp = config.tcp.unwrap();
    assert_eq!(tcp.routers["db"].service, "db");
    assert_eq!(
        tcp.services["db"].load_balancer.as_ref().unwrap().servers[0].address,
        "127.0.0.1:5432"
    );
}

#[test]
fn router_without_service_among_several_is_dropped() {
    let mut app = fixture("inspect_host_network.json");
    app.labels.insert(
        "traefik.http.services.other.loadbalancer.server.port".into(),
        "18090".into(),
    );
    let (config, errors) = build(&[app], &settings(|_| {}));
    let http = config.http.unwrap();
    assert!(http.routers.is_empty());
    assert_eq!(urls_of(&http, "other"), ["http://127.0.0.1:18090"]);
    assert!(errors[0].to_string().contains("router web1"), "{errors:?}");
}

fn urls_of(http: &viaduct_config::HttpConfig, service: &str) -> Vec<String> {
    http.services[service]
        .load_balancer
        .as_ref()
        .unwrap()
        .servers
        .iter()
        .map(|s| s.url.clone())
        .collect()
}

#[test]
fn missing_port_drops_the_container_with_an_error() {
    let mut web = fixture("inspect_host_network.json");
    web.labels.retain(|k, _| !k.contains("server.port"));
    let (config, errors) = build(&[web], &settings(|_| {}));
    assert!(config.is_empty());
    assert!(
        errors[0].to_string().contains("container web1")
            && errors[0].to_string().contains("port is missing")
    );
}

#[test]
fn tcp_router_without_service_among_several_is_dropped_alone() {
    let app = with_traefik_labels(&[
        ("traefik.tcp.routers.db.rule", "HostSNI(`*`)"),
        ("traefik.tcp.routers.pinned.rule", "HostSNI(`a`)"),
        ("traefik.tcp.routers.pinned.service", "one"),
        ("traefik.tcp.services.one.loadbalancer.server.port", "5432"),
        ("traefik.tcp.services.two.loadbalancer.server.port", "5433"),
    ]);
    let (config, errors) = build(&[app], &settings(|_| {}));
    let tcp = config.tcp.unwrap();
    assert_eq!(tcp.routers.keys().collect::<Vec<_>>(), ["pinned"]);
    assert_eq!(tcp.services.len(), 2);
    assert!(
        errors[0].to_string().contains("TCP router db"),
        "{errors:?}"
    );
}

#[test]
fn tcp_and_udp_replicas_merge_into_one_service_each() {
    let app = with_traefik_labels(&[
        ("traefik.tcp.routers.db.rule", "HostSNI(`*`)"),
        ("traefik.tcp.services.db.loadbalancer.server.port", "5432"),
        ("traefik.udp.routers.dns.entrypoints", "dns"),
        ("traefik.udp.services.dns.loadbalancer.server.port", "53"),
    ]);
    let replicas = [
        on_network(app.clone(), "a1", "10.0.0.2"),
        on_network(app, "a2", "10.0.0.3"),
    ];
    let (config, errors) = build(&replicas, &settings(|_| {}));
    assert!(errors.is_empty(), "{errors:?}");
    let tcp = config.tcp.unwrap();
    assert_eq!(tcp.routers["db"].service, "db");
    let tcp_servers = &tcp.services["db"].load_balancer.as_ref().unwrap().servers;
    let tcp_addresses: Vec<_> = tcp_servers.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(tcp_addresses, ["10.0.0.2:5432", "10.0.0.3:5432"]);
    let udp = config.udp.unwrap();
    assert_eq!(udp.routers["dns"].service, "dns");
    let udp_servers = &udp.services["dns"].load_balancer.as_ref().unwrap().servers;
    let udp_addresses: Vec<_> = udp_servers.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(udp_addresses, ["10.0.0.2:53", "10.0.0.3:53"]);
}
