use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::sign::CertifiedKey;

use crate::acme::AcmeState;
use crate::client_auth::PolicyKey;
use crate::{provider, TlsError};

/// Common name of the generated default certificate, as Traefik names its own.
pub const DEFAULT_CERT_COMMON_NAME: &str = "TRAEFIK DEFAULT CERT";

/// Sessions remembered per client verification policy, for TLS 1.2 session-ID resumption and TLS 1.3 stateful
/// tickets.
const SESSION_CACHE_ENTRIES: usize = 4096;

/// Process-wide TLS state that outlives snapshots: the generated default certificate (CN "TRAEFIK DEFAULT CERT", like
/// Traefik), the session caches and the ticketers, so that a reload neither regenerates the default certificate nor
/// forgets sessions.
///
/// A resumed session skips client authentication, so each client verification policy (`clientAuth` type and CAs)
/// gets its own cache and ticket keys: a session opened where no certificate was asked cannot be resumed where one is
/// required, even after a reload changes a host's options.
#[derive(Debug, Clone)]
pub struct TlsShared {
    pub(crate) default_cert: Arc<CertifiedKey>,
    pub(crate) acme: Arc<AcmeState>,
    resumption: Arc<Mutex<HashMap<PolicyKey, Resumption>>>,
}

/// What one verification policy resumes sessions with.
#[derive(Debug, Clone)]
pub(crate) struct Resumption {
    pub(crate) session_cache: Arc<dyn StoresServerSessions>,
    pub(crate) ticketer: Arc<dyn ProducesTickets>,
}

impl TlsShared {
    pub fn new() -> Result<TlsShared, TlsError> {
        Ok(TlsShared {
            default_cert: Arc::new(generate_default_cert()?),
            acme: Arc::new(AcmeState::default()),
            resumption: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The generated self-signed certificate served when nothing else matches.
    pub fn default_certificate(&self) -> &Arc<CertifiedKey> {
        &self.default_cert
    }

    /// Certificates obtained over ACME and pending challenges, shared with the ACME resolvers.
    pub fn acme(&self) -> &Arc<AcmeState> {
        &self.acme
    }

    /// The session cache and ticketer of `policy`, created on first use and kept for the life of the process.
    pub(crate) fn resumption(&self, policy: PolicyKey) -> Result<Resumption, TlsError> {
        // The map only ever grows by whole entries, so a panic elsewhere cannot leave it inconsistent.
        let mut by_policy = self
            .resumption
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = by_policy.get(&policy) {
            return Ok(known.clone());
        }
        let created = Resumption {
            session_cache: ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES),
            ticketer: rustls::crypto::ring::Ticketer::new().map_err(TlsError::Ticketer)?,
        };
        by_policy.insert(policy, created.clone());
        Ok(created)
    }
}

/// A self-signed ECDSA P-256 certificate (ring cannot generate RSA keys) with no names, so that it never matches an SNI.
fn generate_default_cert() -> Result<CertifiedKey, TlsError> {
    let key_pair = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEFAULT_CERT_COMMON_NAME);
    let cert = params.self_signed(&key_pair)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    CertifiedKey::from_der(vec![cert.der().clone()], key, &provider())
        .map_err(TlsError::DefaultCertKey)
}
