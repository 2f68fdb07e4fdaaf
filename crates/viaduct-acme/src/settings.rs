//! `certificatesResolvers.<name>.acme`, read from the static configuration (kept untyped there, since values may come
//! from YAML, TOML, flags or environment variables as strings).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use viaduct_config::GoDuration;

use crate::keys::KeyType;
use crate::AcmeError;

/// Let's Encrypt's production directory, Traefik's default `caServer`.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Traefik's default `certificatesDuration`, in hours (Let's Encrypt's 90 days).
const DEFAULT_CERTIFICATES_DURATION_HOURS: u64 = 2160;

/// One resolver's ACME settings, validated.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub email: String,
    pub ca_server: String,
    pub storage: String,
    pub key_type: KeyType,
    pub eab: Option<Eab>,
    pub certificates_duration_hours: u64,
    pub preferred_chain: String,
    pub profile: String,
    pub disable_common_name: bool,
    pub ca_certificates: Vec<String>,
    pub ca_system_cert_pool: bool,
    pub ca_server_name: String,
    /// `clientResponseHeaderTimeout` (30 s): how long the ACME server may take to answer a request.
    pub client_response_header_timeout: Duration,
    /// `certificateTimeout` (30 s): how long the certificate may take to be issued once the order is finalized.
    pub certificate_timeout: Duration,
    pub http_challenge: Option<HttpChallenge>,
    pub tls_challenge: Option<TlsChallenge>,
    pub dns_challenge: Option<DnsChallenge>,
}

#[derive(Debug, Clone)]
pub struct Eab {
    pub kid: String,
    /// Base64url (as Traefik takes it) HMAC key.
    pub hmac_encoded: String,
}

#[derive(Debug, Clone)]
pub struct HttpChallenge {
    pub entry_point: String,
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub struct TlsChallenge {
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub struct DnsChallenge {
    pub provider: String,
    pub resolvers: Vec<String>,
    pub delay_before_checks: Duration,
    pub disable_checks: bool,
}

impl AcmeSettings {
    /// Reads `certificatesResolvers.<resolver>.acme`.
    pub fn parse(resolver: &str, acme: &Value) -> Result<AcmeSettings, AcmeError> {
        let raw: Raw =
            serde_json::from_value(canonical(acme.clone())).map_err(|e| AcmeError::Settings {
                resolver: resolver.to_string(),
                message: format!("invalid acme section: {e}"),
            })?;
        let invalid = |message: String| AcmeError::Settings {
            resolver: resolver.to_string(),
            message,
        };
        if raw.storage.is_empty() {
            return Err(invalid("acme.storage is required".into()));
        }
        let key_type = if raw.key_type.is_empty() {
            KeyType::Rsa4096
        } else {
            KeyType::parse(&raw.key_type).unwrap_or_else(|| {
                tracing::warn!(resolver, key_type = %raw.key_type, "unknown keyType; using RSA4096");
                KeyType::Rsa4096
            })
        };
        let certificates_duration_hours = match raw.certificates_duration {
            None => DEFAULT_CERTIFICATES_DURATION_HOURS,
            Some(value) => number(&value).ok_or_else(|| {
                invalid(format!(
                    "certificatesDuration {value} is not a number of hours"
                ))
            })?,
        };
        let dns_challenge = raw
            .dns_challenge
            .map(|dns| {
                if dns.provider.is_empty() {
                    return Err(invalid("dnsChallenge.provider is required".into()));
                }
                let propagation = dns.propagation.unwrap_or_default();
                Ok(DnsChallenge {
                    provider: dns.provider,
                    resolvers: dns.resolvers,
                    delay_before_checks: propagation
                        .delay_before_checks
                        .or(dns.delay_before_check)
                        .map(|d| d.value)
                        .unwrap_or_default(),
                    disable_checks: propagation.disable_checks.as_ref().is_some_and(truthy)
                        || dns.disable_propagation_check.as_ref().is_some_and(truthy),
                })
            })
            .transpose()?;
        let settings = AcmeSettings {
            email: raw.email,
            ca_server: upgrade_v01(if raw.ca_server.is_empty() {
                LETS_ENCRYPT_DIRECTORY.to_string()
            } else {
                raw.ca_server
            }),
            storage: raw.storage,
            key_type,
            eab: raw.eab.filter(|e| !e.kid.is_empty()).map(|e| Eab {
                kid: e.kid,
                hmac_encoded: e.hmac_encoded,
            }),
            certificates_duration_hours,
            preferred_chain: raw.preferred_chain,
            profile: raw.profile,
            disable_common_name: raw.disable_common_name.as_ref().is_some_and(truthy),
            ca_certificates: raw.ca_certificates,
            ca_system_cert_pool: raw.ca_system_cert_pool.as_ref().is_some_and(truthy),
            ca_server_name: raw.ca_server_name,
            client_response_header_timeout: positive(raw.client_response_header_timeout)
                .unwrap_or(Duration::from_secs(30)),
            certificate_timeout: positive(raw.certificate_timeout)
                .unwrap_or(Duration::from_secs(30)),
            http_challenge: raw.http_challenge.map(|h| HttpChallenge {
                entry_point: h.entry_point,
                delay: h.delay.map(|d| d.value).unwrap_or_default(),
            }),
            tls_challenge: raw.tls_challenge.map(|t| TlsChallenge {
                delay: t.delay.map(|d| d.value).unwrap_or_default(),
            }),
            dns_challenge,
        };
        if settings.http_challenge.is_none()
            && settings.tls_challenge.is_none()
            && settings.dns_challenge.is_none()
        {
            return Err(invalid(
                "no challenge is configured (httpChallenge, tlsChallenge or dnsChallenge)".into(),
            ));
        }
        if let Some(http) = &settings.http_challenge {
            if http.entry_point.is_empty() {
                return Err(invalid("httpChallenge.entryPoint is required".into()));
            }
        }
        Ok(settings)
    }

    /// Traefik's renewal schedule: how long before expiry a certificate is renewed, and how often that is checked.
    pub fn renewal(&self) -> (Duration, Duration) {
        const HOUR: u64 = 3600;
        const DAY: u64 = 24 * HOUR;
        let (before, interval) = match self.certificates_duration_hours {
            h if h >= 365 * 24 => (120 * DAY, 7 * DAY),
            h if h >= 90 * 24 => (30 * DAY, DAY),
            h if h >= 30 * 24 => (10 * DAY, 12 * HOUR),
            h if h >= 6 * 24 => (2 * DAY, 2 * HOUR),
            h if h >= 24 => (6 * HOUR, 600),
            _ => (1200, 60),
        };
        (Duration::from_secs(before), Duration::from_secs(interval))
    }
}

/// Every key this module reads, in its canonical spelling.
const KEYS: &[&str] = &[
    "email",
    "emailAddresses",
    "caServer",
    "storage",
    "keyType",
    "eab",
    "kid",
    "hmacEncoded",
    "certificatesDuration",
    "preferredChain",
    "profile",
    "disableCommonName",
    "caCertificates",
    "caSystemCertPool",
    "caServerName",
    "clientResponseHeaderTimeout",
    "certificateTimeout",
    "httpChallenge",
    "entryPoint",
    "delay",
    "tlsChallenge",
    "dnsChallenge",
    "provider",
    "resolvers",
    "delayBeforeCheck",
    "disablePropagationCheck",
    "propagation",
    "delayBeforeChecks",
    "disableChecks",
];

/// Sections that flags enable with `=true` and YAML with an empty value.
const SECTIONS: &[&str] = &[
    "httpChallenge",
    "tlsChallenge",
    "dnsChallenge",
    "eab",
    "propagation",
];

/// Lists that flags and environment variables give as one comma-separated string.
const LISTS: &[&str] = &["caCertificates", "resolvers", "emailAddresses"];

/// The section as Traefik reads it, whatever the source: keys in any case (flags arrive in lower case), sections
/// enabled by `true` or an empty value, lists as comma-separated strings.
fn canonical(value: Value) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        let key = KEYS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(&key))
            .map_or(key, |known| known.to_string());
        let value = if SECTIONS.contains(&key.as_str()) {
            match value {
                Value::Null => Value::Object(serde_json::Map::new()),
                Value::Bool(true) => Value::Object(serde_json::Map::new()),
                Value::String(s) if s.eq_ignore_ascii_case("true") || s.is_empty() => {
                    Value::Object(serde_json::Map::new())
                }
                Value::Bool(false) => continue,
                Value::String(s) if s.eq_ignore_ascii_case("false") => continue,
                other => canonical(other),
            }
        } else if LISTS.contains(&key.as_str()) {
            match value {
                Value::String(s) => Value::Array(
                    s.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| Value::String(item.to_string()))
                        .collect(),
                ),
                other => other,
            }
        } else {
            canonical(value)
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

/// Traefik rewrites Let's Encrypt's retired v01 URLs to v02.
fn upgrade_v01(url: String) -> String {
    url.replace(
        "acme-v01.api.letsencrypt.org",
        "acme-v02.api.letsencrypt.org",
    )
    .replace(
        "acme-staging.api.letsencrypt.org",
        "acme-staging-v02.api.letsencrypt.org",
    )
}

fn positive(duration: Option<GoDuration>) -> Option<Duration> {
    duration
        .filter(|d| !d.negative && !d.value.is_zero())
        .map(|d| d.value)
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Unknown keys (`emailAddresses`, `clientTimeout`, propagation details…) are accepted and have no effect.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Raw {
    email: String,
    ca_server: String,
    storage: String,
    key_type: String,
    eab: Option<RawEab>,
    certificates_duration: Option<Value>,
    preferred_chain: String,
    profile: String,
    disable_common_name: Option<Value>,
    ca_certificates: Vec<String>,
    ca_system_cert_pool: Option<Value>,
    ca_server_name: String,
    client_response_header_timeout: Option<GoDuration>,
    certificate_timeout: Option<GoDuration>,
    http_challenge: Option<RawHttp>,
    tls_challenge: Option<RawTls>,
    dns_challenge: Option<RawDns>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawEab {
    kid: String,
    hmac_encoded: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawHttp {
    entry_point: String,
    delay: Option<GoDuration>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawTls {
    delay: Option<GoDuration>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawDns {
    provider: String,
    resolvers: Vec<String>,
    delay_before_check: Option<GoDuration>,
    disable_propagation_check: Option<Value>,
    propagation: Option<RawPropagation>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawPropagation {
    delay_before_checks: Option<GoDuration>,
    disable_checks: Option<Value>,
}
