//! Ingresses (with their Services, EndpointSlices and Secrets) → the dynamic configuration,
//! as Traefik's `kubernetes` provider builds it: names, rules, priorities and the paths it
//! skips (with a log line naming the ingress).

use std::collections::BTreeMap;

use base64::Engine as _;
use viaduct_config::dynamic::{
    DynamicConfig, HttpConfig, LoadBalancer, Router, Server, Service as DynService, TlsCertificate,
    TlsConfig,
};

use crate::annotations::{RouterAnnotations, ServiceAnnotations};
use crate::model::{
    Cluster, HttpIngressPath, Ingress, IngressBackend, IngressRule, Service, ServicePort,
    SERVICE_NAME_LABEL,
};

/// The IngressClass controller value Traefik answers to.
pub const TRAEFIK_CONTROLLER: &str = "traefik.io/ingress-controller";
/// The legacy class annotation.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The provider options the translation depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranslateOptions {
    pub ingress_class: String,
    pub allow_empty_services: bool,
    pub allow_external_name_services: bool,
    /// IngressClasses are not read (`disableIngressClassLookup`, `disableClusterScopeResources`):
    /// Ingresses with an `ingressClassName` are then not served.
    pub no_ingress_class_lookup: bool,
}

/// The configuration, and what was skipped and why (one line per problem, naming the ingress).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    pub config: DynamicConfig,
    pub problems: Vec<String>,
}

/// Builds the provider's configuration from what it knows of the cluster.
pub fn translate(cluster: &Cluster, options: &TranslateOptions) -> Translation {
    let mut problems = Vec::new();
    let mut http = HttpConfig::default();
    let mut certificates: BTreeMap<String, TlsCertificate> = BTreeMap::new();
    let classes = served_classes(cluster, options);

    for ingress in cluster.ingresses.values() {
        let (namespace, name) = (&ingress.metadata.namespace, &ingress.metadata.name);
        let mut problem =
            |what: String| problems.push(format!("ingress {namespace}/{name}: {what}"));
        if !should_process(ingress, &classes, options) {
            continue;
        }
        let router_config = match RouterAnnotations::parse(&ingress.metadata.annotations) {
            Ok(config) => config,
            Err(e) => {
                problem(format!("{e}; the ingress is skipped"));
                continue;
            }
        };
        if let Err(e) = collect_certificates(cluster, ingress, &mut certificates) {
            problem(format!("TLS: {e}"));
        }

        if ingress.spec.rules.is_empty() {
            if let Some(backend) = &ingress.spec.default_backend {
                if http.services.contains_key("default-backend") {
                    problem("the default backend already exists".into());
                } else {
                    match load_service(cluster, namespace, backend, options) {
                        Ok(service) => {
                            let router = Router {
                                rule: "PathPrefix(`/`)".into(),
                                priority: i64::from(i32::MIN),
                                service: "default-backend".into(),
                                entry_points: router_config.entry_points.clone(),
                                middlewares: router_config.middlewares.clone(),
                                tls: router_config.tls.clone(),
                                ..Router::default()
                            };
                            http.routers.insert("default-router".into(), router);
                            http.services.insert("default-backend".into(), service);
                        }
                        Err(e) => problem(format!("default backend {}: {e}", describe(backend))),
                    }
                }
            }
        }

        let mut routers: BTreeMap<String, Vec<Router>> = BTreeMap::new();
        for rule in &ingress.spec.rules {
            let Some(rule_http) = &rule.http else {
                continue;
            };
            for path in &rule_http.paths {
                let service = match load_service(cluster, namespace, &path.backend, options) {
                    Ok(service) => service,
                    Err(e) => {
                        problem(format!(
                            "path {:?} ({}): {e}; the path is skipped",
                            path.path,
                            describe(&path.backend)
                        ));
                        continue;
                    }
                };
                let Some(backend) = &path.backend.service else {
                    continue;
                };
                let port = if backend.port.name.is_empty() {
                    backend.port.number.to_string()
                } else {
                    backend.port.name.clone()
                };
                let service_name = normalize(&format!("{namespace}-{}-{port}", backend.name));
                http.services.insert(service_name.clone(), service);
                let key = normalize(&format!("{namespace}-{name}-{}{}", rule.host, path.path));
                routers.entry(key).or_default().push(load_router(
                    rule,
                    path,
                    &router_config,
                    service_name,
                ));
            }
        }
        for (key, same_key) in routers {
            if same_key.len() == 1 {
                http.routers
                    .extend(same_key.into_iter().map(|r| (key.clone(), r)));
                continue;
            }
            // Several paths normalise to one name: each gets the rule's hash, as Traefik does.
            for router in same_key {
                http.routers
                    .insert(format!("{key}-{}", rule_hash(&router.rule)), router);
            }
        }
    }

    let tls = (!certificates.is_empty()).then(|| TlsConfig {
        certificates: certificates.into_values().collect(),
        ..TlsConfig::default()
    });
    Translation {
        config: DynamicConfig {
            http: Some(http),
            tls,
            ..DynamicConfig::default()
        },
        problems,
    }
}

/// Traefik's `provider.Normalize`: runs of characters other than letters and digits become
/// one `-`, and none leads or trails.
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// The IngressClass names this provider serves (`None` when IngressClasses are not read).
fn served_classes(cluster: &Cluster, options: &TranslateOptions) -> Option<Vec<String>> {
    if options.no_ingress_class_lookup {
        return None;
    }
    Some(
        cluster
            .ingress_classes
            .values()
            .filter(|class| class.spec.controller == TRAEFIK_CONTROLLER)
            .map(|class| class.metadata.name.clone())
            .filter(|name| options.ingress_class.is_empty() || *name == options.ingress_class)
            .collect(),
    )
}

fn should_process(
    ingress: &Ingress,
    classes: &Option<Vec<String>>,
    options: &TranslateOptions,
) -> bool {
    if let Some(class_name) = &ingress.spec.ingress_class_name {
        // Without the IngressClass lookup, Traefik serves no Ingress that names a class (even
        // one named like `ingressClass`); checked against Traefik 3.7.
        return classes
            .as_ref()
            .is_some_and(|classes| classes.contains(class_name));
    }
    let annotation = ingress
        .metadata
        .annotations
        .get(INGRESS_CLASS_ANNOTATION)
        .map(String::as_str)
        .unwrap_or("");
    options.ingress_class == annotation
        || (options.ingress_class.is_empty() && annotation == "traefik")
}

fn load_router(
    rule: &IngressRule,
    path: &HttpIngressPath,
    config: &RouterAnnotations,
    service: String,
) -> Router {
    let mut matchers = Vec::new();
    if !rule.host.is_empty() {
        matchers.push(host_rule(&rule.host));
    }
    if !path.path.is_empty() {
        let matcher = match path.path_type.as_deref() {
            Some("Exact") => "Path",
            Some("Prefix") => "PathPrefix",
            _ => config.path_matcher.as_deref().unwrap_or("PathPrefix"),
        };
        matchers.push(format!("{matcher}(`{}`)", path.path));
    }
    if matchers.is_empty() {
        // Neither host nor path: every request (a router needs a rule).
        matchers.push("PathPrefix(`/`)".into());
    }
    Router {
        rule: matchers.join(" && "),
        service,
        priority: config.priority,
        entry_points: config.entry_points.clone(),
        middlewares: config.middlewares.clone(),
        rule_syntax: config.rule_syntax.clone(),
        tls: config.tls.clone(),
        observability: config.observability.clone(),
        ..Router::default()
    }
}

/// `Host(...)`, or for a wildcard (`*.example.com`) a regexp matching one label in its place.
fn host_rule(host: &str) -> String {
    match host.strip_prefix("*.") {
        Some(rest) => format!("HostRegexp(`^[a-zA-Z0-9-]+\\.{}$`)", quote_meta(rest)),
        None => format!("Host(`{host}`)"),
    }
}

fn quote_meta(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}

/// The first 10 bytes of the rule's SHA-256, in hex (Go's `%.10x` of the digest).
fn rule_hash(rule: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, rule.as_bytes());
    digest.as_ref()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn describe(backend: &IngressBackend) -> String {
    match &backend.service {
        Some(s) if s.port.name.is_empty() => format!("service {}:{}", s.name, s.port.number),
        Some(s) => format!("service {}:{}", s.name, s.port.name),
        None => "a non-service backend".into(),
    }
}

/// One backend's load balancer: a server per ready endpoint address, the Service's
/// `service.*` annotations applied.
fn load_service(
    cluster: &Cluster,
    namespace: &str,
    backend: &IngressBackend,
    options: &TranslateOptions,
) -> Result<DynService, String> {
    let Some(wanted) = &backend.service else {
        return Err("only service backends are supported".into());
    };
    let service = cluster
        .services
        .get(&(namespace.to_string(), wanted.name.clone()))
        .ok_or_else(|| format!("service {namespace}/{} not found", wanted.name))?;
    let external = service.spec.kind == "ExternalName";
    if external && !options.allow_external_name_services {
        return Err(format!(
            "externalName services not allowed: {namespace}/{}",
            wanted.name
        ));
    }
    let port = service
        .spec
        .ports
        .iter()
        .find(|p| {
            wanted.port.number == p.port || (!p.name.is_empty() && wanted.port.name == p.name)
        })
        .ok_or_else(|| "service port not found".to_string())?;
    let annotations = ServiceAnnotations::parse(&service.metadata.annotations)
        .map_err(|e| format!("service {namespace}/{}: {e}", wanted.name))?;
    let mut balancer = LoadBalancer {
        sticky: annotations.sticky.clone().map(Box::new),
        servers_transport: annotations.servers_transport.clone(),
        ..LoadBalancer::default()
    };
    if let Some(pass) = annotations.pass_host_header {
        balancer.pass_host_header = pass;
    }
    let scheme = scheme(port, &annotations);
    if external {
        balancer
            .servers
            .push(server(scheme, &service.spec.external_name, port.port));
    } else {
        balancer.servers = endpoint_servers(cluster, service, port, scheme);
    }
    if balancer.servers.is_empty() && !options.allow_empty_services {
        return Err("no endpoints found".into());
    }
    Ok(DynService {
        load_balancer: Some(balancer),
        middlewares: annotations.middlewares,
        ..DynService::default()
    })
}

fn endpoint_servers(
    cluster: &Cluster,
    service: &Service,
    port: &ServicePort,
    scheme: &str,
) -> Vec<Server> {
    let mut servers = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let slices = cluster.endpoint_slices.values().filter(|slice| {
        slice.metadata.namespace == service.metadata.namespace
            && slice.metadata.labels.get(SERVICE_NAME_LABEL) == Some(&service.metadata.name)
    });
    for slice in slices {
        let Some(target) = slice
            .ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == port.name)
            .and_then(|p| p.port)
            .filter(|p| *p != 0)
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // Unknown readiness counts as ready (as the EndpointSlice API asks, and as Traefik
            // does); only `ready: false` is left out.
            if endpoint.conditions.ready == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                if seen.insert((address.clone(), target)) {
                    servers.push(server(scheme, address, target));
                }
            }
        }
    }
    servers
}

fn scheme<'a>(port: &ServicePort, annotations: &'a ServiceAnnotations) -> &'a str {
    match annotations.servers_scheme.as_deref() {
        Some(scheme) if !scheme.is_empty() => scheme,
        _ if port.port == 443 || port.name.starts_with("https") => "https",
        _ => "http",
    }
}

fn server(scheme: &str, host: &str, port: i32) -> Server {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Server {
        url: format!("{scheme}://{host}:{port}"),
        ..Server::default()
    }
}

/// The certificates of the ingress's `tls` entries, keyed `namespace-secret` (sorted, as
/// Traefik orders them).
fn collect_certificates(
    cluster: &Cluster,
    ingress: &Ingress,
    certificates: &mut BTreeMap<String, TlsCertificate>,
) -> Result<(), String> {
    let namespace = &ingress.metadata.namespace;
    for tls in &ingress.spec.tls {
        if tls.secret_name.is_empty() {
            continue;
        }
        let key = format!("{namespace}-{}", tls.secret_name);
        if certificates.contains_key(&key) {
            continue;
        }
        let secret = cluster
            .secrets
            .get(&(namespace.clone(), tls.secret_name.clone()))
            .ok_or_else(|| format!("secret {namespace}/{} does not exist", tls.secret_name))?;
        let entry = |field: &str| -> Result<String, String> {
            let encoded = secret.data.get(field).ok_or_else(|| {
                format!(
                    "secret {namespace}/{} is missing the TLS data entry {field}",
                    tls.secret_name
                )
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("secret {namespace}/{}: {field}: {e}", tls.secret_name))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                format!("secret {namespace}/{}: {field} is not PEM", tls.secret_name)
            })?;
            if text.is_empty() {
                return Err(format!(
                    "secret {namespace}/{} has an empty TLS data entry {field}",
                    tls.secret_name
                ));
            }
            Ok(text)
        };
        let certificate = TlsCertificate {
            cert_file: entry("tls.crt")?,
            key_file: entry("tls.key")?,
            ..TlsCertificate::default()
        };
        certificates.insert(key, certificate);
    }
    Ok(())
}
