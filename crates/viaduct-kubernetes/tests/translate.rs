//! The translation of Ingresses to the dynamic configuration. The objects are JSON in the
//! shape a real API server gives (`kubectl get -o json` of networking.k8s.io/v1 Ingresses,
//! v1 Services and Secrets, discovery.k8s.io/v1 EndpointSlices, trimmed of status fields).

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use viaduct_kubernetes::{translate, Cluster, TranslateOptions, Translation};

fn service(name: &str, ports: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1021",
                     "uid": "4b7e3e0c-0d3c-4c2c-9d53-2b8f6a1d2e10"},
        "spec": {"clusterIP": "10.43.12.7", "clusterIPs": ["10.43.12.7"], "type": "ClusterIP",
                 "ipFamilies": ["IPv4"], "selector": {"app": name}, "ports": ports}
    })
}

fn slice(service: &str, addresses: &[(&str, bool)], ports: Value) -> Value {
    let endpoints: Vec<Value> = addresses
        .iter()
        .map(|(ip, ready)| {
            json!({"addresses": [ip],
                   "conditions": {"ready": ready, "serving": ready, "terminating": false},
                   "nodeName": "k3s-server",
                   "targetRef": {"kind": "Pod", "name": format!("{service}-7d9c"), "namespace": "default"}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-x7k2p"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                     "resourceVersion": "1033"},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports
    })
}

fn ingress(name: &str, annotations: Value, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations,
                     "generation": 1, "resourceVersion": "1102"},
        "spec": spec,
        "status": {"loadBalancer": {}}
    })
}

fn whoami() -> Vec<Value> {
    vec![
        service(
            "whoami",
            json!([{"name": "web", "port": 80, "protocol": "TCP", "targetPort": 8080}]),
        ),
        slice(
            "whoami",
            &[
                ("10.42.0.5", true),
                ("10.42.0.6", true),
                ("10.42.0.7", false),
            ],
            json!([{"name": "web", "port": 8080, "protocol": "TCP"}]),
        ),
    ]
}

fn path(path: &str, path_type: &str, service: &str, port: Value) -> Value {
    json!({"path": path, "pathType": path_type,
           "backend": {"service": {"name": service, "port": port}}})
}

fn run(objects: Vec<Value>, options: &TranslateOptions) -> Translation {
    translate(&Cluster::from_objects(&objects).unwrap(), options)
}

fn routers(t: &Translation) -> Vec<(String, String)> {
    let http = t.config.http.as_ref().unwrap();
    http.routers
        .iter()
        .map(|(name, r)| (name.clone(), r.rule.clone()))
        .collect()
}

#[test]
fn host_and_paths_become_traefiks_routers_and_services() {
    let mut objects = whoami();
    objects.push(ingress(
        "app",
        json!({}),
        json!({"rules": [{"host": "app.example.com", "http": {"paths": [
            path("/api", "Prefix", "whoami", json!({"number": 80})),
            path("/exact", "Exact", "whoami", json!({"name": "web"})),
            path("/impl", "ImplementationSpecific", "whoami", json!({"number": 80})),
        ]}}]}),
    ));
    let t = run(objects, &TranslateOptions::default());
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    assert_eq!(
        routers(&t),
        [
            (
                "default-app-app-example-com-api".to_string(),
                "Host(`app.example.com`) && PathPrefix(`/api`)".to_string()
            ),
            (
                "default-app-app-example-com-exact".into(),
                "Host(`app.example.com`) && Path(`/exact`)".into()
            ),
            (
                "default-app-app-example-com-impl".into(),
                "Host(`app.example.com`) && PathPrefix(`/impl`)".into()
            ),
        ]
    );
    let http = t.config.http.as_ref().unwrap();
    let by_number = &http.routers["default-app-app-example-com-api"];
    assert_eq!(by_number.service, "default-whoami-80");
    assert_eq!(by_number.priority, 0);
    assert_eq!(
        http.routers["default-app-app-example-com-exact"].service,
        "default-whoami-web"
    );
    let servers: Vec<&str> = http.services["default-whoami-80"]
        .load_balancer
        .as_ref()
        .unwrap()
        .servers
        .iter()
        .map(|s| s.url.as_str())
        .collect();
    // The endpoint that is not ready is left out.
    assert_eq!(servers, ["http://10.42.0.5:8080", "http://10.42.0.6:8080"]);
    assert!(
        http.services["default-whoami-80"]
            .load_balancer
            .as_ref()
            .unwrap()
            .pass_host_header
    );
}

#[test]
fn router_annotations_apply_to_every_router_of_the_ingress() {
    let mut objects = whoami();
    objects.push(ingress(
        "annotated",
        json!({
            "traefik.ingress.kubernetes.io/router.entrypoints": "web, websecure",
            "traefik.ingress.kubernetes.io/router.middlewares": "default-auth@kubernetescrd,strip@file",
            "traefik.ingress.kubernetes.io/router.priority": "42",
            "traefik.ingress.kubernetes.io/router.pathmatcher": "Path",
            "traefik.ingress.kubernetes.io/router.tls": "true",
            "traefik.ingress.kubernetes.io/router.tls.certresolver": "le"
        }),
        json!({"rules": [{"http": {"paths": [
            path("/impl", "ImplementationSpecific", "whoami", json!({"number": 80})),
            path("/prefix", "Prefix", "whoami", json!({"number": 80})),
        ]}}]}),
    ));
    let t = run(objects, &TranslateOptions::default());
    let http = t.config.http.as_ref().unwrap();
    let router = &http.routers["default-annotated-impl"];
    // The path matcher annotation applies to ImplementationSpecific paths only.
    assert_eq!(router.rule, "Path(`/impl`)");
    assert_eq!(
        http.routers["default-annotated-prefix"].rule,
        "PathPrefix(`/prefix`)"
    );
    assert_eq!(router.entry_points, ["web", "websecure"]);
    assert_eq!(
        router.middlewares,
        ["default-auth@kubernetescrd", "strip@file"]
    );
    assert_eq!(router.priority, 42);
    assert_eq!(router.tls.as_ref().unwrap().cert_resolver, "le");
}

#[test]
fn bad_references_skip_the_path_with_a_problem_naming_the_ingress() {
    let mut objects = whoami();
    objects.push(service("lonely", json!([{"name": "http", "port": 80}])));
    objects.push(ingress(
        "broken",
        json!({}),
        json!({"rules": [{"host": "b.example.com", "http": {"paths": [
            path("/missing", "Prefix", "nosuch", json!({"number": 80})),
            path("/port", "Prefix", "whoami", json!({"number": 9999})),
            path("/named", "Prefix", "whoami", json!({"name": "nope"})),
            path("/empty", "Prefix", "lonely", json!({"number": 80})),
            path("/ok", "Prefix", "whoami", json!({"number": 80})),
        ]}}]}),
    ));
    let t = run(objects.clone(), &TranslateOptions::default());
    assert_eq!(
        routers(&t).into_iter().map(|(n, _)| n).collect::<Vec<_>>(),
        ["default-broken-b-example-com-ok"]
    );
    assert_eq!(t.problems.len(), 4, "{:?}", t.problems);
    assert!(t
        .problems
        .iter()
        .all(|p| p.starts_with("ingress default/broken:")));
    assert!(t.problems[0].contains("service default/nosuch not found"));
    assert!(t.problems[1].contains("service port not found"));
    assert!(t.problems[3].contains("no endpoints found"));

    // allowEmptyServices keeps the service without servers.
    let options = TranslateOptions {
        allow_empty_services: true,
        ..TranslateOptions::default()
    };
    let t = run(objects, &options);
    assert!(t
        .config
        .http
        .as_ref()
        .unwrap()
        .routers
        .contains_key("default-broken-b-example-com-empty"));
}

#[test]
fn https_scheme_from_port_443_a_port_named_https_or_the_annotation() {
    let mut svc = service(
        "secure",
        json!([{"name": "https-main", "port": 8443}, {"name": "tls", "port": 443},
               {"name": "plain", "port": 80}]),
    );
    svc["metadata"]["annotations"] = json!({
        "traefik.ingress.kubernetes.io/service.sticky.cookie": "true",
        "traefik.ingress.kubernetes.io/service.sticky.cookie.name": "affinity",
        "traefik.ingress.kubernetes.io/service.passhostheader": "false"
    });
    let objects = vec![
        svc,
        slice(
            "secure",
            &[("10.42.1.9", true)],
            json!([{"name": "https-main", "port": 8443}, {"name": "tls", "port": 9443},
                   {"name": "plain", "port": 8080}]),
        ),
        ingress(
            "s",
            json!({}),
            json!({"rules": [{"host": "s.example.com", "http": {"paths": [
                path("/a", "Prefix", "secure", json!({"name": "https-main"})),
                path("/b", "Prefix", "secure", json!({"number": 443})),
                path("/c", "Prefix", "secure", json!({"number": 80})),
            ]}}]}),
        ),
    ];
    let t = run(objects, &TranslateOptions::default());
    let http = t.config.http.as_ref().unwrap();
    let url = |name: &str| {
        http.services[name].load_balancer.as_ref().unwrap().servers[0]
            .url
            .clone()
    };
    assert_eq!(url("default-secure-https-main"), "https://10.42.1.9:8443");
    assert_eq!(url("default-secure-443"), "https://10.42.1.9:9443");
    assert_eq!(url("default-secure-80"), "http://10.42.1.9:8080");
    let lb = http.services["default-secure-80"]
        .load_balancer
        .as_ref()
        .unwrap();
    assert!(!lb.pass_host_header);
    assert_eq!(
        lb.sticky.as_ref().unwrap().cookie.as_ref().unwrap().name,
        "affinity"
    );
}

#[test]
fn ingress_classes_filter_what_is_served() {
    let class = |name: &str, controller: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": name, "resourceVersion": "300"},
               "spec": {"controller": controller}})
    };
    let rule = |host: &str| json!([{"host": host, "http": {"paths": [path("/", "Prefix", "whoami", json!({"number": 80}))]}}]);
    let mut objects = whoami();
    objects.extend([
        class("traefik", "traefik.io/ingress-controller"),
        class("nginx", "k8s.io/ingress-nginx"),
        ingress(
            "by-class",
            json!({}),
            json!({"ingressClassName": "traefik", "rules": rule("a.example.com")}),
        ),
        ingress(
            "other-class",
            json!({}),
            json!({"ingressClassName": "nginx", "rules": rule("b.example.com")}),
        ),
        ingress(
            "legacy",
            json!({"kubernetes.io/ingress.class": "traefik"}),
            json!({"rules": rule("c.example.com")}),
        ),
        ingress(
            "legacy-other",
            json!({"kubernetes.io/ingress.class": "nginx"}),
            json!({"rules": rule("d.example.com")}),
        ),
        ingress(
            "unclassed",
            json!({}),
            json!({"rules": rule("e.example.com")}),
        ),
    ]);
    let names =
        |t: &Translation| -> Vec<String> { routers(t).into_iter().map(|(n, _)| n).collect() };
    let t = run(objects.clone(), &TranslateOptions::default());
    assert_eq!(
        names(&t),
        [
            "default-by-class-a-example-com",
            "default-legacy-c-example-com",
            "default-unclassed-e-example-com"
        ]
    );
    let options = TranslateOptions {
        ingress_class: "nginx".into(),
        ..TranslateOptions::default()
    };
    // A class whose controller is not Traefik's is not served, even when named.
    let t = run(objects, &options);
    assert_eq!(names(&t), ["default-legacy-other-d-example-com"]);
}

#[test]
fn tls_secrets_default_backend_wildcards_and_name_collisions() {
    let mut objects = whoami();
    objects.push(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "app-tls", "namespace": "default", "resourceVersion": "800"},
        "data": {"tls.crt": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
                 "tls.key": "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCg=="}
    }));
    objects.push(ingress(
        "tls",
        json!({}),
        json!({"tls": [{"hosts": ["*.example.com"], "secretName": "app-tls"},
                {"hosts": ["x.example.com"], "secretName": "missing"}],
        "rules": [{"host": "*.example.com", "http": {"paths": [
            path("/a-b", "Prefix", "whoami", json!({"number": 80})),
            path("/a/b", "Prefix", "whoami", json!({"number": 80})),
        ]}}]}),
    ));
    objects.push(ingress(
        "fallback",
        json!({"traefik.ingress.kubernetes.io/router.entrypoints": "web"}),
        json!({"defaultBackend": {"service": {"name": "whoami", "port": {"number": 80}}}}),
    ));
    let t = run(objects, &TranslateOptions::default());
    let tls = t.config.tls.as_ref().unwrap();
    assert_eq!(tls.certificates.len(), 1);
    assert_eq!(
        tls.certificates[0].cert_file,
        "-----BEGIN CERTIFICATE-----\n"
    );
    assert_eq!(
        tls.certificates[0].key_file,
        "-----BEGIN PRIVATE KEY-----\n"
    );
    assert!(t
        .problems
        .iter()
        .any(|p| p.contains("secret default/missing does not exist")));

    let http = t.config.http.as_ref().unwrap();
    let default = &http.routers["default-router"];
    assert_eq!(default.rule, "PathPrefix(`/`)");
    assert_eq!(default.priority, i64::from(i32::MIN));
    assert_eq!(default.service, "default-backend");
    assert_eq!(default.entry_points, ["web"]);
    assert!(http.services.contains_key("default-backend"));

    // `/a-b` and `/a/b` normalise to one name: each gets its rule's hash.
    let colliding: Vec<&String> = http
        .routers
        .keys()
        .filter(|k| k.starts_with("default-tls-example-com-a-b-"))
        .collect();
    assert_eq!(colliding.len(), 2, "{:?}", http.routers.keys());
    assert!(colliding
        .iter()
        .all(|k| k.len() == "default-tls-example-com-a-b-".len() + 20));
    let rules: Vec<&str> = http.routers.values().map(|r| r.rule.as_str()).collect();
    assert!(rules.contains(&"HostRegexp(`^[a-zA-Z0-9-]+\\.example\\.com$`) && PathPrefix(`/a-b`)"));
}

#[test]
fn external_name_services_need_the_option() {
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "ext", "namespace": "default"},
               "spec": {"type": "ExternalName", "externalName": "api.example.org",
                        "ports": [{"name": "https", "port": 443}]}}),
        ingress(
            "ext",
            json!({}),
            json!({"rules": [{"http": {"paths": [path("/", "Prefix", "ext", json!({"number": 443}))]}}]}),
        ),
    ];
    let t = run(objects.clone(), &TranslateOptions::default());
    assert!(t.problems[0].contains("externalName services not allowed"));
    let options = TranslateOptions {
        allow_external_name_services: true,
        ..TranslateOptions::default()
    };
    let t = run(objects, &options);
    let http = t.config.http.as_ref().unwrap();
    assert_eq!(
        http.services["default-ext-443"]
            .load_balancer
            .as_ref()
            .unwrap()
            .servers[0]
            .url,
        "https://api.example.org:443"
    );
    assert_eq!(http.routers["default-ext"].rule, "PathPrefix(`/`)");
}

#[test]
fn normalize_is_traefiks() {
    use viaduct_kubernetes::translate::normalize;
    assert_eq!(
        normalize("default-app-foo.example.com/api/v1"),
        "default-app-foo-example-com-api-v1"
    );
    assert_eq!(normalize("-ns--x-"), "ns-x");
}

#[test]
fn annotations_are_case_insensitive_go_booleans_and_bad_values_skip_the_ingress() {
    use std::collections::BTreeMap;
    use viaduct_kubernetes::annotations::{RouterAnnotations, ServiceAnnotations};
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let router = RouterAnnotations::parse(&map(&[
        (
            "traefik.ingress.kubernetes.io/Router.EntryPoints",
            "websecure",
        ),
        ("traefik.ingress.kubernetes.io/router.tls", "T"),
        (
            "traefik.ingress.kubernetes.io/router.tls.options",
            "default-strict@kubernetescrd",
        ),
        ("other.io/router.priority", "not ours"),
        (
            "traefik.ingress.kubernetes.io/router.tls.domains.1.main",
            "example.org",
        ),
        (
            "traefik.ingress.kubernetes.io/router.tls.domains.1.sans",
            "a.example.org, b.example.org",
        ),
        (
            "traefik.ingress.kubernetes.io/router.observability.accesslogs",
            "false",
        ),
    ]))
    .unwrap();
    assert_eq!(router.entry_points, ["websecure"]);
    assert_eq!(router.observability.unwrap().access_logs, Some(false));
    let tls = router.tls.unwrap();
    assert_eq!(tls.options, "default-strict@kubernetescrd");
    assert_eq!(tls.domains.len(), 2);
    assert_eq!(tls.domains[1].main, "example.org");
    assert_eq!(tls.domains[1].sans, ["a.example.org", "b.example.org"]);
    assert!(RouterAnnotations::parse(&map(&[(
        "traefik.ingress.kubernetes.io/router.priority",
        "high"
    )]))
    .is_err());
    let service = ServiceAnnotations::parse(&map(&[
        (
            "traefik.ingress.kubernetes.io/service.sticky.cookie.secure",
            "true",
        ),
        (
            "traefik.ingress.kubernetes.io/service.sticky.cookie.maxage",
            "60",
        ),
        ("traefik.ingress.kubernetes.io/service.serversscheme", "h2c"),
        (
            "traefik.ingress.kubernetes.io/service.middlewares",
            "default-retry@kubernetescrd",
        ),
    ]))
    .unwrap();
    let cookie = service.sticky.unwrap().cookie.unwrap();
    assert!(cookie.secure);
    assert_eq!(cookie.max_age, 60);
    assert_eq!(service.servers_scheme.as_deref(), Some("h2c"));
    assert_eq!(service.middlewares, ["default-retry@kubernetescrd"]);

    let mut objects = whoami();
    objects.push(ingress(
        "bad",
        json!({"traefik.ingress.kubernetes.io/router.tls": "maybe"}),
        json!({"rules": [{"http": {"paths": [path("/", "Prefix", "whoami", json!({"number": 80}))]}}]}),
    ));
    let t = run(objects, &TranslateOptions::default());
    assert!(routers(&t).is_empty());
    assert!(t.problems[0]
        .starts_with("ingress default/bad: annotation traefik.ingress.kubernetes.io/router.tls"));
}
