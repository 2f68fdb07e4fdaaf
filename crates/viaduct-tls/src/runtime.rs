use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use viaduct_config::{TlsConfig, TlsOptions};

use crate::options::{compile, server_config, OptionsSpec};
use crate::store::{normalize, CertStore, FixedCert, SniResolver};
use crate::{TlsIssue, TlsRoute, TlsShared};

/// Name of the option set used when a router names none, and by hosts no router claims.
const DEFAULT_OPTIONS: &str = "default";

/// One compiled TLS configuration (per snapshot).
#[derive(Debug)]
pub struct TlsRuntime {
    store: Arc<CertStore>,
    acme: Arc<crate::AcmeState>,
    /// Valid option sets by name; `default` is always present unless even the built-in defaults failed to build.
    configs: HashMap<String, CompiledOptions>,
    /// Options by exact host.
    exact_hosts: HashMap<String, String>,
    /// Options by the parent domain of a `*.example.com` route host.
    wildcard_hosts: HashMap<String, String>,
}

#[derive(Debug)]
struct CompiledOptions {
    config: Arc<ServerConfig>,
    sni_strict: bool,
}

impl TlsRuntime {
    /// `routes`: for every TLS router, the exact hosts its rule names (lower-case; `*.x.com` wildcards allowed) and
    /// its options name (`""` → `default`). Several routers naming the same host with different options → that host
    /// falls back to `default` and an issue is reported (Traefik's behaviour).
    pub fn build(
        config: Option<&TlsConfig>,
        routes: &[TlsRoute],
        shared: &TlsShared,
    ) -> (TlsRuntime, Vec<TlsIssue>) {
        let mut issues = Vec::new();
        let store = Arc::new(CertStore::build(config, shared, &mut issues));
        let resolver = Arc::new(SniResolver {
            store: store.clone(),
        });
        let mut configs = HashMap::new();
        let configured = config.map(|config| &config.options);
        for (name, options) in configured.into_iter().flatten() {
            let object = format!("tls.options.{name}");
            let built = compile(&object, options, &mut issues)
                .and_then(|spec| build_one(&object, &spec, &resolver, shared, &mut issues));
            match built {
                Some(compiled) => {
                    configs.insert(name.clone(), compiled);
                }
                None if name == DEFAULT_OPTIONS => issues.push(TlsIssue::error(
                    &object,
                    "invalid; the built-in default TLS options are used instead",
                )),
                None => {}
            }
        }
        if !configs.contains_key(DEFAULT_OPTIONS) {
            let object = format!("tls.options.{DEFAULT_OPTIONS}");
            let built = compile(&object, &TlsOptions::default(), &mut issues)
                .and_then(|spec| build_one(&object, &spec, &resolver, shared, &mut issues));
            if let Some(compiled) = built {
                configs.insert(DEFAULT_OPTIONS.to_string(), compiled);
            }
        }
        let mut runtime = TlsRuntime {
            store,
            acme: shared.acme.clone(),
            configs,
            exact_hosts: HashMap::new(),
            wildcard_hosts: HashMap::new(),
        };
        runtime.map_hosts(routes, &mut issues);
        (runtime, issues)
    }

    /// The rustls config to finish a handshake with, chosen from the ClientHello's SNI: options by host (exact, then
    /// wildcard), else `default`. `None` → refuse the handshake (sniStrict with no matching certificate).
    pub fn server_config(&self, sni: Option<&str>) -> Option<Arc<ServerConfig>> {
        let host = sni.map(normalize);
        let (name, compiled) = self.options_for(host.as_deref())?;
        if compiled.sni_strict
            && host
                .as_deref()
                .and_then(|host| self.store.find(host))
                .is_none()
        {
            tracing::debug!(
                sni = host.as_deref().unwrap_or(""),
                options = name,
                "strict SNI: no certificate, refusing"
            );
            return None;
        }
        Some(compiled.config.clone())
    }

    /// Like [`TlsRuntime::server_config`], for a connection accepted on the local address `local`: without SNI
    /// (clients connecting by IP address), the certificate whose IP SAN is `local` is served when there is one, as
    /// Traefik does.
    pub fn server_config_at(&self, sni: Option<&str>, local: IpAddr) -> Option<Arc<ServerConfig>> {
        if sni.is_some() {
            return self.server_config(sni);
        }
        let ip = local.to_canonical().to_string();
        let Some(cert) = self.store.find(&ip) else {
            return self.server_config(None);
        };
        let (_, compiled) = self.options_for(Some(&ip))?;
        let mut config = (*compiled.config).clone();
        config.cert_resolver = Arc::new(FixedCert(cert.clone()));
        Some(Arc::new(config))
    }

    /// Certificates obtained over ACME and pending challenges (TLS-ALPN-01 and HTTP-01 answers).
    pub fn acme(&self) -> &crate::AcmeState {
        &self.acme
    }

    /// True if a `tls.certificates` entry serves `name` (`*.x` asks for a wildcard certificate): ACME resolvers do
    /// not order names that configured certificates serve, as Traefik's do not.
    pub fn has_configured_certificate(&self, name: &str) -> bool {
        self.store.configured_covers(name)
    }

    /// The certificates this configuration serves (`tls.certificates`, the default store's
    /// `defaultCertificate` or generated certificate, ACME's), the generated self-signed default
    /// aside, as Traefik lists them in `traefik_tls_certs_not_after`. Parses each leaf: for
    /// scrapes, not for handshakes.
    pub fn served_certificates(&self) -> Vec<crate::ServedCertificate> {
        self.store.served()
    }

    /// True if `options` names a defined option (for router validation; `""`/`default` always true).
    pub fn has_options(&self, options: &str) -> bool {
        options.is_empty() || options == DEFAULT_OPTIONS || self.configs.contains_key(options)
    }

    /// The options for `host` (exact route host, then wildcard route host, else `default`) and their name.
    fn options_for(&self, host: Option<&str>) -> Option<(&str, &CompiledOptions)> {
        let name = host
            .and_then(|host| self.options_for_host(host))
            .unwrap_or(DEFAULT_OPTIONS);
        match self.configs.get_key_value(name) {
            Some((name, compiled)) => Some((name.as_str(), compiled)),
            None => self
                .configs
                .get_key_value(DEFAULT_OPTIONS)
                .map(|(name, compiled)| (name.as_str(), compiled)),
        }
    }

    fn options_for_host(&self, host: &str) -> Option<&str> {
        if let Some(name) = self.exact_hosts.get(host) {
            return Some(name);
        }
        let (_, parent) = host.split_once('.')?;
        self.wildcard_hosts.get(parent).map(String::as_str)
    }

    fn map_hosts(&mut self, routes: &[TlsRoute], issues: &mut Vec<TlsIssue>) {
        // `None` marks a host claimed with conflicting options.
        let mut claimed: HashMap<String, Option<String>> = HashMap::new();
        for route in routes {
            let name = if route.options.is_empty() {
                DEFAULT_OPTIONS
            } else {
                route.options.as_str()
            };
            for host in &route.hosts {
                match claimed.entry(normalize(host)) {
                    Entry::Vacant(slot) => {
                        slot.insert(Some(name.to_string()));
                    }
                    Entry::Occupied(mut slot) => match slot.get() {
                        Some(previous) if previous != name => {
                            issues.push(TlsIssue::warning(
                                format!("tls.options.{name}"),
                                format!(
                                    "host {} is also routed with TLS options {previous}; it uses the default TLS \
                                     options instead",
                                    slot.key()
                                ),
                            ));
                            slot.insert(None);
                        }
                        _ => {}
                    },
                }
            }
        }
        for (host, name) in claimed {
            // Routers with unknown or invalid options are disabled by the caller; their hosts keep the default.
            let Some(name) = name.filter(|name| self.configs.contains_key(name)) else {
                continue;
            };
            match host.strip_prefix("*.") {
                Some(parent) => self.wildcard_hosts.insert(parent.to_string(), name),
                None => self.exact_hosts.insert(host, name),
            };
        }
    }
}

fn build_one(
    object: &str,
    spec: &OptionsSpec,
    resolver: &Arc<SniResolver>,
    shared: &TlsShared,
    issues: &mut Vec<TlsIssue>,
) -> Option<CompiledOptions> {
    match server_config(spec, resolver.clone(), shared) {
        Ok(config) => Some(CompiledOptions {
            config: Arc::new(config),
            sni_strict: spec.sni_strict,
        }),
        Err(reason) => {
            issues.push(TlsIssue::error(object, reason));
            None
        }
    }
}
