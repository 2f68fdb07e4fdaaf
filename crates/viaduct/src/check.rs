//! `viaduct check`: validate the static and file-provider configuration (the Docker and
//! Kubernetes Ingress providers' options, and the HTTP and KV providers' options and current
//! configuration) without serving.

use std::process::ExitCode;

use viaduct_providers::{FileProvider, ObjectOrigins, FILE_PROVIDER_NAME};
use viaduct_proxy::compile;

use crate::static_load;

/// The HTTP provider's options (an error when bad) and its endpoint's current configuration. An
/// endpoint that does not answer now is a warning: it may well answer where Viaduct runs.
fn check_http_provider(
    options: &viaduct_config::static_config::HttpProvider,
) -> Result<Option<viaduct_config::DynamicConfig>, viaduct_http_provider::HttpProviderError> {
    let provider = viaduct_http_provider::HttpProvider::new(options)?;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            println!("warning: providers.http: cannot poll the endpoint: {e}");
            return Ok(None);
        }
    };
    match runtime.block_on(provider.fetch()) {
        Ok(config) => Ok(Some(config)),
        Err(e @ viaduct_http_provider::HttpProviderError::Decode { .. }) => Err(e),
        Err(e) => {
            println!("warning: providers.http: {e}");
            Ok(None)
        }
    }
}

/// What a KV provider (Redis, etcd) has stored now. A store that does not answer now is a
/// warning (it may where Viaduct runs); a stored key that does not decode is an error.
fn check_kv_store(
    provider: &str,
    fetch: impl std::future::Future<Output = Result<viaduct_config::DynamicConfig, viaduct_kv::KvError>>,
) -> Result<Option<viaduct_config::DynamicConfig>, viaduct_kv::KvError> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            println!("warning: providers.{provider}: cannot read the store: {e}");
            return Ok(None);
        }
    };
    match runtime.block_on(fetch) {
        Ok(config) => Ok(Some(config)),
        Err(e @ viaduct_kv::KvError::Layout(_)) => Err(e),
        Err(e) => {
            println!("warning: providers.{provider}: {e}");
            Ok(None)
        }
    }
}

pub fn run(args: &[String]) -> ExitCode {
    let mut errors: Vec<String> = Vec::new();
    let loaded = match static_load::load(args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    println!("static configuration: {}", loaded.describe());
    let config = loaded.config;
    for key in config.unsupported_keys() {
        println!("warning: {key}: not supported yet; it would have no effect");
    }

    let resolvers = check_resolvers(&config, &mut errors);

    let ctx = match crate::context::build(&config, Default::default()) {
        Ok((_, ctx)) => Some(ctx),
        Err(e) => {
            errors.push(format!("{e:#}"));
            None
        }
    };

    let mut by_provider = std::collections::BTreeMap::new();
    let mut origins = ObjectOrigins::default();
    if let Some(file) = &config.providers.file {
        match FileProvider::new(file) {
            Ok(provider) => {
                let (loaded, file_origins, file_errors) = provider.load_once_with_origins();
                origins = file_origins;
                errors.extend(file_errors.iter().map(|e| e.to_string()));
                by_provider.insert(FILE_PROVIDER_NAME.to_string(), loaded);
            }
            Err(e) => errors.push(format!("providers.file: {e}")),
        }
    }

    if let Some(docker) = &config.providers.docker {
        // Containers are only known at run time; the options are checked here.
        if let Err(e) = viaduct_docker::DockerProvider::new(docker) {
            errors.push(e.to_string());
        }
    }

    if let Some(ingress) = &config.providers.kubernetes_ingress {
        // Ingresses are only known at run time; the options (and the CA and token files) are
        // checked here.
        if let Err(e) = viaduct_kubernetes::KubernetesIngressProvider::new(ingress) {
            errors.push(format!("providers.kubernetesIngress: {e}"));
        }
    }

    if let Some(http) = &config.providers.http {
        match check_http_provider(http) {
            Ok(Some(fetched)) => {
                by_provider.insert(
                    viaduct_http_provider::HTTP_PROVIDER_NAME.to_string(),
                    std::sync::Arc::new(fetched),
                );
            }
            Ok(None) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }

    let mut kv_stores = Vec::new();
    if let Some(redis) = &config.providers.redis {
        let fetched = viaduct_kv::RedisProvider::new(redis)
            .and_then(|p| check_kv_store(viaduct_kv::REDIS_PROVIDER_NAME, p.fetch()));
        kv_stores.push((viaduct_kv::REDIS_PROVIDER_NAME, fetched));
    }
    if let Some(etcd) = &config.providers.etcd {
        let fetched = viaduct_kv::EtcdProvider::new(etcd)
            .and_then(|p| check_kv_store(viaduct_kv::ETCD_PROVIDER_NAME, p.fetch()));
        kv_stores.push((viaduct_kv::ETCD_PROVIDER_NAME, fetched));
    }
    if let Some(consul) = &config.providers.consul {
        let fetched = viaduct_kv::ConsulProvider::new(consul)
            .and_then(|p| check_kv_store(viaduct_kv::CONSUL_PROVIDER_NAME, p.fetch()));
        kv_stores.push((viaduct_kv::CONSUL_PROVIDER_NAME, fetched));
    }
    for (provider, fetched) in kv_stores {
        match fetched {
            Ok(Some(fetched)) => {
                by_provider.insert(provider.to_string(), std::sync::Arc::new(fetched));
            }
            Ok(None) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }

    let dynamic = viaduct_providers::merge(&by_provider);
    if let Some(ctx) = &ctx {
        let snapshot = compile(&dynamic, ctx, None, 1);
        for (object, messages) in &snapshot.status.errors {
            let object = describe(object, &origins);
            for m in messages {
                errors.push(format!("{object}: {m}"));
            }
        }
        for (object, messages) in &snapshot.status.warnings {
            let object = describe(object, &origins);
            for m in messages {
                println!("warning: {object}: {m}");
            }
        }
        for request in &snapshot.certificate_requests {
            if !resolvers.contains(&request.resolver) {
                println!(
                    "warning: certResolver {:?} (asked for {}) does not exist or is not usable; the default \
                     certificate would be served",
                    request.resolver, request.main
                );
            }
        }
    }
    let http = dynamic.http.unwrap_or_default();
    if errors.is_empty() {
        println!(
            "configuration OK: {} entry points, {} routers, {} services",
            config.entry_points.len(),
            http.routers.len(),
            http.services.len()
        );
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            eprintln!("error: {e}");
        }
        eprintln!("{} error(s)", errors.len());
        ExitCode::from(1)
    }
}

/// Validates every ACME resolver (settings, DNS provider and its environment); returns the usable ones' names.
fn check_resolvers(
    config: &viaduct_config::StaticConfig,
    errors: &mut Vec<String>,
) -> std::collections::BTreeSet<String> {
    let mut usable = std::collections::BTreeSet::new();
    for (name, resolver) in &config.certificates_resolvers {
        let Some(acme) = &resolver.acme else {
            continue;
        };
        match viaduct_acme::AcmeSettings::parse(name, acme) {
            Ok(settings) => {
                let dns = settings
                    .dns_challenge
                    .as_ref()
                    .map(|dns| viaduct_acme::DnsProvider::from_name(&dns.provider));
                match dns {
                    Some(Err(e)) => errors.push(format!("certificatesResolvers.{name}: {e}")),
                    _ => {
                        usable.insert(name.clone());
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    usable
}

/// The dynamic configuration's sections, and what `check` calls an object of each.
const OBJECT_KINDS: [(&str, &str); 12] = [
    ("http.routers", "router"),
    ("http.services", "service"),
    ("http.middlewares", "middleware"),
    ("http.serversTransports", "serversTransport"),
    ("tcp.routers", "TCP router"),
    ("tcp.services", "TCP service"),
    ("tcp.middlewares", "TCP middleware"),
    ("tcp.serversTransports", "TCP serversTransport"),
    ("udp.routers", "UDP router"),
    ("udp.services", "UDP service"),
    ("tls.options", "TLS options"),
    ("tls.stores", "TLS store"),
];

/// An object the compiler reports on (`http.routers.api@file`), as users look for it: the file
/// and line that define it when the file provider does, then its kind and name
/// (`routes.yml:4: router "api@file"`). Other keys (`entryPoints.web…`) are left as they are.
fn describe(object: &str, origins: &ObjectOrigins) -> String {
    let known = OBJECT_KINDS.iter().find_map(|(section, kind)| {
        let name = object.strip_prefix(section)?.strip_prefix('.')?;
        Some((section, kind, name))
    });
    let Some((section, kind, name)) = known else {
        return object.to_string();
    };
    let origin = name
        .strip_suffix(&format!("@{FILE_PROVIDER_NAME}"))
        .and_then(|bare| origins.get(&format!("{section}.{bare}")));
    match origin {
        Some(origin) => format!("{origin}: {kind} {name:?}"),
        None => format!("{kind} {name:?}"),
    }
}
