//! The certificate store: every `tls.certificates` entry indexed by the names it answers for, plus the default
//! certificate served when no name matches.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use viaduct_config::{StoreCertificate, TlsConfig};

use crate::names::leaf_info;
use crate::pem::{load_certs, load_key, origin};
use crate::served::{describe, ServedCertificate};
use crate::{provider, TlsError, TlsIssue, TlsShared};

/// Certificates by name. Shared (behind an `Arc`) by every server configuration of one runtime.
#[derive(Debug)]
pub(crate) struct CertStore {
    /// Exact DNS names and IP addresses.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` certificates, keyed by `example.com`: a wildcard covers exactly one label.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// The keys of `exact` and `wildcard` that `tls.certificates` entries serve (the others are ACME's).
    configured: Configured,
    default: Arc<CertifiedKey>,
    /// Every certificate served, the generated default aside: configured ones in order, the
    /// store's default, then ACME's (what `traefik_tls_certs_not_after` lists).
    served: Vec<Arc<CertifiedKey>>,
}

#[derive(Debug, Default)]
struct Configured {
    exact: std::collections::HashSet<String>,
    wildcard: std::collections::HashSet<String>,
}

/// Picks the certificate for a handshake from the ClientHello's SNI.
#[derive(Debug)]
pub(crate) struct SniResolver {
    pub(crate) store: Arc<CertStore>,
}

/// Serves one certificate whatever the ClientHello says: chosen before the handshake from the local address.
#[derive(Debug)]
pub(crate) struct FixedCert(pub(crate) Arc<CertifiedKey>);

impl CertStore {
    pub(crate) fn build(
        config: Option<&TlsConfig>,
        shared: &TlsShared,
        issues: &mut Vec<TlsIssue>,
    ) -> CertStore {
        let mut store = CertStore {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            configured: Configured::default(),
            default: shared.default_cert.clone(),
            served: Vec::new(),
        };
        let Some(config) = config else {
            store.add_acme(shared);
            return store;
        };
        for (index, entry) in config.certificates.iter().enumerate() {
            let object = format!("tls.certificates[{index}]");
            for name in entry
                .stores
                .iter()
                .filter(|name| name.as_str() != "default")
            {
                issues.push(TlsIssue::warning(
                    &object,
                    format!("store {name:?} is not supported; the certificate goes to the default store"),
                ));
            }
            match load_certified(&entry.cert_file, &entry.key_file) {
                Ok(cert) => store.add(cert, &object, &entry.cert_file, issues),
                Err(err) => issues.push(TlsIssue::error(&object, err.to_string())),
            }
        }
        for (name, tls_store) in &config.stores {
            let object = format!("tls.stores.{name}");
            if name != "default" {
                issues.push(TlsIssue::warning(
                    &object,
                    "only the store named \"default\" is used; this store is ignored",
                ));
                continue;
            }
            // Obtained by the resolver (the compiler asks for it): served as the default once it exists, in
            // place of `defaultCertificate` and the generated one.
            let generated = tls_store
                .default_generated_cert
                .as_ref()
                .and_then(|generated| generated.domain.as_ref())
                .and_then(|domain| acme_certificate_for(shared, &domain.main));
            if let Some(generated) = generated {
                store.served.push(generated.clone());
                store.default = generated;
            } else if let Some(default) = &tls_store.default_certificate {
                match load_default(default, &object, issues) {
                    Ok(cert) => {
                        store.served.push(cert.clone());
                        store.default = cert;
                    }
                    Err(err) => issues.push(TlsIssue::error(
                        format!("{object}.defaultCertificate"),
                        format!("{err}; serving the generated default certificate"),
                    )),
                }
            }
        }
        store.add_acme(shared);
        store
    }

    /// The certificate whose names cover `sni`: exact name first, then a one-label wildcard.
    pub(crate) fn find(&self, sni: &str) -> Option<&Arc<CertifiedKey>> {
        let sni = normalize(sni);
        if let Some(cert) = self.exact.get(&sni) {
            return Some(cert);
        }
        let (_, parent) = sni.split_once('.')?;
        self.wildcard.get(parent)
    }

    /// True if a `tls.certificates` entry serves `name`: a wildcard request (`*.x`) needs a `*.x` certificate, a name
    /// is also served by a one-label wildcard.
    pub(crate) fn configured_covers(&self, name: &str) -> bool {
        let name = normalize(name);
        if let Some(parent) = name.strip_prefix("*.") {
            return self.configured.wildcard.contains(parent);
        }
        self.configured.exact.contains(&name)
            || name
                .split_once('.')
                .is_some_and(|(_, parent)| self.configured.wildcard.contains(parent))
    }

    /// The certificate to serve: the matching one, else the default.
    pub(crate) fn select(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        sni.and_then(|sni| self.find(sni))
            .unwrap_or(&self.default)
            .clone()
    }

    /// ACME certificates come from the resolvers' storage; a name a `tls.certificates` entry serves keeps that
    /// entry's certificate.
    fn add_acme(&mut self, shared: &TlsShared) {
        self.configured = Configured {
            exact: self.exact.keys().cloned().collect(),
            wildcard: self.wildcard.keys().cloned().collect(),
        };
        for cert in shared.acme.certificates().iter() {
            self.served.push(cert.key.clone());
            for name in &cert.names {
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut self.wildcard, parent.to_string()),
                    None => (&mut self.exact, name.clone()),
                };
                map.entry(key).or_insert_with(|| cert.key.clone());
            }
        }
    }

    /// Every certificate served but the generated default, described for metrics.
    pub(crate) fn served(&self) -> Vec<ServedCertificate> {
        describe(self.served.iter().map(|key| key.as_ref()))
    }

    fn add(&mut self, cert: Loaded, object: &str, cert_file: &str, issues: &mut Vec<TlsIssue>) {
        self.served.push(cert.key.clone());
        let source = origin(cert_file);
        if cert.info.expired {
            issues.push(TlsIssue::warning(
                object,
                format!(
                    "certificate from {source} is outside its validity period; it is served anyway"
                ),
            ));
        }
        if cert.info.names.is_empty() {
            issues.push(TlsIssue::warning(
                object,
                format!("certificate from {source} names no host; it is never selected"),
            ));
        }
        for name in &cert.info.names {
            let (map, key) = match name.strip_prefix("*.") {
                Some(parent) => (&mut self.wildcard, parent.to_string()),
                None => (&mut self.exact, name.clone()),
            };
            match map.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(cert.key.clone());
                }
                Entry::Occupied(_) => issues.push(TlsIssue::warning(
                    object,
                    format!("another certificate already serves {name}; keeping the first"),
                )),
            }
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.store.select(client_hello.server_name()))
    }
}

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The obtained certificate whose names include `main` exactly.
fn acme_certificate_for(shared: &TlsShared, main: &str) -> Option<Arc<CertifiedKey>> {
    let main = normalize(main);
    shared
        .acme
        .certificates()
        .iter()
        .find(|cert| cert.names.contains(&main))
        .map(|cert| cert.key.clone())
}

/// SNI host names compare case-insensitively and without a trailing dot.
pub(crate) fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

struct Loaded {
    key: Arc<CertifiedKey>,
    info: crate::names::LeafInfo,
}

fn load_certified(cert_file: &str, key_file: &str) -> Result<Loaded, TlsError> {
    let chain = load_certs(cert_file, "certificate")?;
    let key = load_key(key_file, "private key")?;
    let source = origin(cert_file);
    let info = leaf_info(&chain[0], &source)?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|source_err| {
        TlsError::KeyMismatch {
            origin: source,
            source: source_err,
        }
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        info,
    })
}

fn load_default(
    default: &StoreCertificate,
    object: &str,
    issues: &mut Vec<TlsIssue>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let loaded = load_certified(&default.cert_file, &default.key_file)?;
    if loaded.info.expired {
        issues.push(TlsIssue::warning(
            format!("{object}.defaultCertificate"),
            "certificate is outside its validity period; it is served anyway",
        ));
    }
    Ok(loaded.key)
}
