//! One `tls.options.<name>` entry compiled to a rustls `ServerConfig`.

use std::sync::Arc;

use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::server::ResolvesServerCert;
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use viaduct_config::TlsOptions;

use crate::client_auth::{compile_client_auth, verifier, ClientAuthSpec};
use crate::{provider, TlsIssue, TlsShared};

/// ALPN offered when `alpnProtocols` is not set. Traefik also offers `acme-tls/1`; Viaduct negotiates it only in the
/// configuration that answers a pending TLS-ALPN-01 validation ([`crate::AcmeState::alpn_challenge_config`]).
const DEFAULT_ALPN: [&str; 2] = ["h2", "http/1.1"];
const ACME_TLS_ALPN: &str = "acme-tls/1";

/// A validated option set, ready to become a `ServerConfig`.
#[derive(Debug, Clone)]
pub(crate) struct OptionsSpec {
    versions: Vec<&'static SupportedProtocolVersion>,
    /// Order of preference; TLS 1.3 suites always come first and are all present.
    cipher_suites: Vec<SupportedCipherSuite>,
    kx_groups: Vec<&'static dyn SupportedKxGroup>,
    alpn: Vec<Vec<u8>>,
    client_auth: ClientAuthSpec,
    pub(crate) sni_strict: bool,
    session_tickets: bool,
}

/// Compiles one option set, reporting every problem under `object`; `None` when any of them is an error.
pub(crate) fn compile(
    object: &str,
    options: &TlsOptions,
    issues: &mut Vec<TlsIssue>,
) -> Option<OptionsSpec> {
    let errors_before = issues.iter().filter(|issue| issue.is_error).count();
    let versions = versions(object, options, issues);
    let cipher_suites = cipher_suites(object, &options.cipher_suites, issues);
    let kx_groups = kx_groups(object, &options.curve_preferences, issues);
    let client_auth = compile_client_auth(object, options.client_auth.as_ref(), issues);
    let alpn = options
        .alpn_protocols
        .as_deref()
        .map(|protocols| {
            protocols
                .iter()
                .map(String::as_str)
                .filter(|p| *p != ACME_TLS_ALPN)
                .collect()
        })
        .unwrap_or_else(|| DEFAULT_ALPN.to_vec())
        .into_iter()
        .map(|protocol| protocol.as_bytes().to_vec())
        .collect();
    let errors_after = issues.iter().filter(|issue| issue.is_error).count();
    if errors_after > errors_before {
        return None;
    }
    Some(OptionsSpec {
        versions: versions?,
        cipher_suites,
        kx_groups,
        alpn,
        client_auth: client_auth?,
        sni_strict: options.sni_strict,
        session_tickets: !options.disable_session_tickets,
    })
}

/// Builds the rustls configuration for `spec`, with certificates from `resolver`.
pub(crate) fn server_config(
    spec: &OptionsSpec,
    resolver: Arc<dyn ResolvesServerCert>,
    shared: &TlsShared,
) -> Result<ServerConfig, String> {
    let base = provider();
    let tailored = Arc::new(CryptoProvider {
        cipher_suites: spec.cipher_suites.clone(),
        kx_groups: spec.kx_groups.clone(),
        ..(*base).clone()
    });
    let verifier = verifier(&spec.client_auth, &tailored).map_err(|err| err.to_string())?;
    let mut config = ServerConfig::builder_with_provider(tailored)
        .with_protocol_versions(&spec.versions)
        .map_err(|err| err.to_string())?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = spec.alpn.clone();
    config.max_early_data_size = 0;
    // The server's order decides, as in Go (see `go_preference`).
    config.ignore_client_order = true;
    if spec.session_tickets {
        let resumption = shared
            .resumption(spec.client_auth.policy_key())
            .map_err(|err| err.to_string())?;
        config.session_storage = resumption.session_cache;
        config.ticketer = resumption.ticketer;
    } else {
        // Go resumes only through tickets: without them, no resumption at all.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

fn versions(
    object: &str,
    options: &TlsOptions,
    issues: &mut Vec<TlsIssue>,
) -> Option<Vec<&'static SupportedProtocolVersion>> {
    let min = parse_version(object, "minVersion", &options.min_version, issues)?;
    let max = parse_version(object, "maxVersion", &options.max_version, issues)?;
    let min = match min {
        Some(v @ (10 | 11)) => {
            issues.push(TlsIssue::warning(
                format!("{object}.minVersion"),
                format!("TLS 1.{} is never offered; raised to TLS 1.2", v - 10),
            ));
            12
        }
        Some(v) => v,
        None => 12,
    };
    let max = max.unwrap_or(13);
    let mut versions = Vec::new();
    if min <= 13 && max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= 12 && max >= 12 {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        issues.push(TlsIssue::error(
            format!("{object}.maxVersion"),
            "no TLS version left to offer (Viaduct offers only TLS 1.2 and 1.3)",
        ));
        return None;
    }
    Some(versions)
}

/// `Some(None)` for an unset version, `Some(Some(1x))` for `VersionTLS1x`, `None` (reported) for anything else.
fn parse_version(
    object: &str,
    field: &str,
    value: &str,
    issues: &mut Vec<TlsIssue>,
) -> Option<Option<u8>> {
    match value {
        "" => Some(None),
        "VersionTLS10" => Some(Some(10)),
        "VersionTLS11" => Some(Some(11)),
        "VersionTLS12" => Some(Some(12)),
        "VersionTLS13" => Some(Some(13)),
        other => {
            issues.push(TlsIssue::error(
                format!("{object}.{field}"),
                format!("unknown TLS version {other:?}"),
            ));
            None
        }
    }
}

fn cipher_suites(
    object: &str,
    names: &[String],
    issues: &mut Vec<TlsIssue>,
) -> Vec<SupportedCipherSuite> {
    let tls13 = [
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    if names.is_empty() {
        let mut suites = provider().cipher_suites.clone();
        suites.sort_by_key(go_preference);
        return suites;
    }
    let mut suites = tls13.to_vec();
    for name in names {
        match tls12_suite(name) {
            Ok(Some(suite)) if !suites.contains(&suite) => suites.push(suite),
            // TLS 1.3 names, and repeats: TLS 1.3 suites are always on, as in Go.
            Ok(_) => {}
            Err(reason) => issues.push(TlsIssue::error(
                format!("{object}.cipherSuites"),
                format!("cipher suite {name}: {reason}"),
            )),
        }
    }
    // Go applies its own preference among the enabled suites, not the listed order.
    suites.sort_by_key(go_preference);
    suites
}

/// Go's preference among the suites it enables (on hardware with AES instructions), which
/// Traefik's server applies whatever order the client lists: AES-128-GCM first (its key
/// schedule runs on SHA-256, cheaper per handshake than AES-256-GCM's SHA-384), then
/// AES-256-GCM, then ChaCha20-Poly1305; ECDSA before RSA within TLS 1.2.
fn go_preference(suite: &SupportedCipherSuite) -> usize {
    const ORDER: [SupportedCipherSuite; 9] = [
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    ORDER
        .iter()
        .position(|s| s.suite() == suite.suite())
        .unwrap_or(ORDER.len())
}

/// Maps a Go cipher suite name; `Ok(None)` for TLS 1.3 names.
fn tls12_suite(name: &str) -> Result<Option<SupportedCipherSuite>, &'static str> {
    Ok(Some(match name {
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Ok(None)
        }
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        other if is_known_go_suite(other) => {
            return Err("not supported (only ECDHE key exchange with AEAD ciphers is offered)")
        }
        _ => return Err("unknown cipher suite"),
    }))
}

/// Suites Go knows but rustls rightly refuses: RSA key exchange, CBC modes, 3DES, RC4.
fn is_known_go_suite(name: &str) -> bool {
    name.starts_with("TLS_RSA_WITH_")
        || (name.starts_with("TLS_ECDHE_")
            && (name.contains("_CBC_") || name.contains("_RC4_") || name.contains("3DES")))
}

fn kx_groups(
    object: &str,
    names: &[String],
    issues: &mut Vec<TlsIssue>,
) -> Vec<&'static dyn SupportedKxGroup> {
    if names.is_empty() {
        return provider().kx_groups.clone();
    }
    let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for name in names {
        let group: &'static dyn SupportedKxGroup = match name.as_str() {
            "CurveP256" | "secp256r1" | "P256" | "P-256" => kx_group::SECP256R1,
            "CurveP384" | "secp384r1" | "P384" | "P-384" => kx_group::SECP384R1,
            "X25519" | "x25519" => kx_group::X25519,
            "CurveP521" | "secp521r1" | "P521" | "P-521" => {
                issues.push(TlsIssue::error(
                    format!("{object}.curvePreferences"),
                    format!(
                        "curve {name} is not supported (supported: CurveP256, CurveP384, X25519)"
                    ),
                ));
                continue;
            }
            other => {
                issues.push(TlsIssue::error(
                    format!("{object}.curvePreferences"),
                    format!("unknown curve {other:?}"),
                ));
                continue;
            }
        };
        if !groups.iter().any(|known| known.name() == group.name()) {
            groups.push(group);
        }
    }
    groups
}
