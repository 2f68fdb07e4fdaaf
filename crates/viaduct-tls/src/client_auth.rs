//! `clientAuth` (`caFiles`, `clientAuthType`) compiled to a rustls client certificate verifier, with Go's five
//! modes.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use viaduct_config::ClientAuth;

use crate::pem::load_certs;
use crate::TlsIssue;

/// Go's `tls.ClientAuthType`, by its Traefik name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientAuthMode {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// A validated `clientAuth` section.
#[derive(Debug, Clone)]
pub(crate) struct ClientAuthSpec {
    pub(crate) mode: ClientAuthMode,
    roots: Arc<RootCertStore>,
    /// The CA certificates behind `roots`, to tell verification policies apart.
    ca_ders: Vec<CertificateDer<'static>>,
}

/// Identifies a client verification policy. A resumed session skips client authentication, so sessions are only
/// resumed under the policy that established them (see [`crate::TlsShared`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PolicyKey {
    mode: ClientAuthMode,
    ca_ders: Vec<Vec<u8>>,
}

impl ClientAuthSpec {
    pub(crate) fn policy_key(&self) -> PolicyKey {
        let verifies = matches!(
            self.mode,
            ClientAuthMode::VerifyClientCertIfGiven | ClientAuthMode::RequireAndVerifyClientCert
        );
        PolicyKey {
            mode: self.mode,
            ca_ders: if verifies {
                self.ca_ders.iter().map(|der| der.to_vec()).collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// Compiles `clientAuth`, reporting every problem; `None` when any of them is an error.
pub(crate) fn compile_client_auth(
    object: &str,
    client_auth: Option<&ClientAuth>,
    issues: &mut Vec<TlsIssue>,
) -> Option<ClientAuthSpec> {
    let Some(client_auth) = client_auth else {
        return Some(ClientAuthSpec {
            mode: ClientAuthMode::NoClientCert,
            roots: Arc::new(RootCertStore::empty()),
            ca_ders: Vec::new(),
        });
    };
    let object = format!("{object}.clientAuth");
    let mut ok = true;
    let mut roots = RootCertStore::empty();
    let mut ca_ders = Vec::new();
    for (index, ca_file) in client_auth.ca_files.iter().enumerate() {
        match load_certs(ca_file, "client CA certificate") {
            Ok(certs) => {
                for cert in certs {
                    ca_ders.push(cert.clone());
                    if let Err(err) = roots.add(cert) {
                        ok = false;
                        issues.push(TlsIssue::error(
                            format!("{object}.caFiles[{index}]"),
                            format!("unusable CA certificate: {err}"),
                        ));
                    }
                }
            }
            Err(err) => {
                ok = false;
                issues.push(TlsIssue::error(
                    format!("{object}.caFiles[{index}]"),
                    err.to_string(),
                ));
            }
        }
    }
    let mode = match client_auth.client_auth_type.as_str() {
        // Traefik verifies client certificates as soon as CA files are given without a type.
        "" if client_auth.ca_files.is_empty() => ClientAuthMode::NoClientCert,
        "" => ClientAuthMode::RequireAndVerifyClientCert,
        "NoClientCert" => ClientAuthMode::NoClientCert,
        "RequestClientCert" => ClientAuthMode::RequestClientCert,
        "RequireAnyClientCert" => ClientAuthMode::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => ClientAuthMode::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuthMode::RequireAndVerifyClientCert,
        other => {
            issues.push(TlsIssue::error(
                format!("{object}.clientAuthType"),
                format!("unknown client auth type {other:?}"),
            ));
            return None;
        }
    };
    let verifies = matches!(
        mode,
        ClientAuthMode::VerifyClientCertIfGiven | ClientAuthMode::RequireAndVerifyClientCert
    );
    if verifies && client_auth.ca_files.is_empty() {
        issues.push(TlsIssue::error(
            format!("{object}.caFiles"),
            format!("client auth type {mode:?} needs at least one CA file"),
        ));
        return None;
    }
    ok.then(|| ClientAuthSpec {
        mode,
        roots: Arc::new(roots),
        ca_ders,
    })
}

/// The rustls verifier implementing `spec`.
pub(crate) fn verifier(
    spec: &ClientAuthSpec,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, rustls::server::VerifierBuilderError> {
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AcceptAnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let webpki =
        || WebPkiClientVerifier::builder_with_provider(spec.roots.clone(), provider.clone());
    Ok(match spec.mode {
        ClientAuthMode::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuthMode::RequestClientCert => any(false),
        ClientAuthMode::RequireAnyClientCert => any(true),
        ClientAuthMode::VerifyClientCertIfGiven => webpki().allow_unauthenticated().build()?,
        ClientAuthMode::RequireAndVerifyClientCert => webpki().build()?,
    })
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: any certificate is accepted unverified, but the client must
/// still prove it holds the key (the handshake signature is checked).
#[derive(Debug)]
struct AcceptAnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AcceptAnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
