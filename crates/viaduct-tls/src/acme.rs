//! What the ACME client shares with the data plane: the certificates it obtained (read by every compile), the HTTP-01
//! tokens and TLS-ALPN-01 certificates it is being challenged with (read per request or handshake, so that a
//! challenge never waits for a recompile), and which entry points answer HTTP-01.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::server::ServerConfig;
use rustls::sign::CertifiedKey;

use crate::provider;
use crate::store::{normalize, FixedCert};

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The path prefix HTTP-01 validation requests use (RFC 8555 §8.3).
pub const HTTP_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// A certificate an ACME resolver obtained, with the names it serves.
#[derive(Debug, Clone)]
pub struct AcmeCertificate {
    /// Lower-case DNS names (`*.example.com` wildcards allowed).
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
}

/// A certificate some router asks a resolver for: the router's `tls.domains` entry, or the hosts of its rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertificateRequest {
    /// `tls.certResolver`.
    pub resolver: String,
    pub main: String,
    pub sans: Vec<String>,
}

/// Shared state between ACME resolvers and the TLS/HTTP entry points. Cheap to read; written only by the ACME task.
#[derive(Debug, Default)]
pub struct AcmeState {
    certificates: RwLock<Certificates>,
    http_tokens: RwLock<HashMap<String, String>>,
    alpn_certificates: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    http_entry_points: RwLock<HashSet<String>>,
}

impl AcmeState {
    /// Replaces the certificates `resolver` obtained; they are served from the next compiled snapshot on.
    pub fn set_certificates(&self, resolver: &str, certificates: Vec<AcmeCertificate>) {
        let mut published = write(&self.certificates);
        published
            .by_resolver
            .insert(resolver.to_string(), certificates);
        published.all = Arc::new(published.by_resolver.values().flatten().cloned().collect());
    }

    /// Every resolver's certificates, in resolver name order.
    pub fn certificates(&self) -> Arc<Vec<AcmeCertificate>> {
        read(&self.certificates).all.clone()
    }

    /// The entry points on which `/.well-known/acme-challenge/` is answered (every resolver's
    /// `httpChallenge.entryPoint`).
    pub fn set_http_entry_points(&self, names: impl IntoIterator<Item = String>) {
        *write(&self.http_entry_points) = names.into_iter().collect();
    }

    pub fn add_http_token(&self, token: &str, key_authorization: &str) {
        write(&self.http_tokens).insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove_http_token(&self, token: &str) {
        write(&self.http_tokens).remove(token);
    }

    /// The answer to an HTTP-01 validation request for `path` on `entry_point`: `None` when this entry point does not
    /// answer challenges or the path is not a challenge path (the request is routed as usual), `Some(None)` for an
    /// unknown token (404), `Some(Some(key_authorization))` otherwise.
    pub fn http_challenge(&self, entry_point: &str, path: &str) -> Option<Option<String>> {
        let token = path.strip_prefix(HTTP_CHALLENGE_PREFIX)?;
        if !read(&self.http_entry_points).contains(entry_point) {
            return None;
        }
        Some(read(&self.http_tokens).get(token).cloned())
    }

    pub fn add_alpn_certificate(&self, domain: &str, key: Arc<CertifiedKey>) {
        write(&self.alpn_certificates).insert(normalize(domain), key);
    }

    pub fn remove_alpn_certificate(&self, domain: &str) {
        write(&self.alpn_certificates).remove(&normalize(domain));
    }

    /// The configuration answering a TLS-ALPN-01 validation for `sni`, when one is pending.
    pub fn alpn_challenge_config(&self, sni: Option<&str>) -> Option<Arc<ServerConfig>> {
        let key = read(&self.alpn_certificates)
            .get(&normalize(sni?))
            .cloned()?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(FixedCert(key)));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Some(Arc::new(config))
    }
}

#[derive(Debug, Default)]
struct Certificates {
    by_resolver: BTreeMap<String, Vec<AcmeCertificate>>,
    /// `by_resolver` flattened, for compiles.
    all: Arc<Vec<AcmeCertificate>>,
}

// The maps are replaced or changed entry by entry, so a panic elsewhere cannot leave them inconsistent.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
