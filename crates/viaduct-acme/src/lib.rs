//! Automatic certificates over ACME (RFC 8555), configured as Traefik's `certificatesResolvers.<name>.acme`.
//!
//! [`AcmeService`] loads each resolver's `acme.json`, publishes the stored certificates to the TLS store
//! ([`viaduct_tls::AcmeState`]) at once, then orders what routers ask for (HTTP-01, TLS-ALPN-01 or DNS-01 through the
//! `exec`/`httpreq` providers) and renews on Traefik's schedule. The data plane answers the challenges from the same
//! shared state.

#![forbid(unsafe_code)]

mod certificate;
mod chains;
mod client;
mod dns;
mod error;
mod keys;
mod order;
mod propagation;
mod service;
mod settings;
mod storage;

pub use certificate::LoadedCertificate;
pub use dns::{DnsProvider, DnsRecord};
pub use error::AcmeError;
pub use keys::KeyType;
pub use service::AcmeService;
pub use settings::{
    AcmeSettings, DnsChallenge, Eab, HttpChallenge, TlsChallenge, LETS_ENCRYPT_DIRECTORY,
};
pub use storage::{
    CertificateStorage, FileStorage, Registration, ResolverData, StoredAccount, StoredCertificate,
    StoredDomain,
};
