//! The provider's static options, checked once: where the engine is, and how containers are
//! turned into configuration.

use std::path::PathBuf;

use viaduct_config::static_config::{ClientTls, DockerProvider as DockerOptions};

use crate::{Constraint, ConstraintError, RuleTemplate, TemplateError};

/// How containers become configuration (the options [`crate::build_configuration`] reads).
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub exposed_by_default: bool,
    /// `network`: the network whose address is used when a container is on several.
    pub network: Option<String>,
    pub default_rule: RuleTemplate,
    pub constraints: Option<Constraint>,
    pub use_bind_port_ip: bool,
    pub allow_empty_services: bool,
    /// The address host-network containers are reached at (`host.docker.internal` when it
    /// resolves, else `127.0.0.1`).
    pub host_ip: String,
}

/// Where the Docker Engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `tcp://host:port` or `http://host:port`, with client certificates when `tls` is set.
    Tcp {
        address: String,
        tls: Option<TlsFiles>,
    },
}

/// `providers.docker.tls`: the files of a mutually authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Static options the provider cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("providers.docker.endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("providers.docker.{0}")]
    Constraints(#[from] ConstraintError),
    #[error("providers.docker.{0}")]
    DefaultRule(#[from] TemplateError),
    #[error("providers.docker.tls: {0}")]
    Tls(String),
}

impl BuildSettings {
    pub fn new(options: &DockerOptions) -> Result<BuildSettings, DockerError> {
        let constraints = options
            .constraints
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(Constraint::parse)
            .transpose()?;
        Ok(BuildSettings {
            exposed_by_default: options.exposed_by_default,
            network: options.network.clone().filter(|n| !n.is_empty()),
            default_rule: RuleTemplate::parse(&options.default_rule)?,
            constraints,
            use_bind_port_ip: options.use_bind_port_ip,
            allow_empty_services: options.allow_empty_services,
            host_ip: "127.0.0.1".into(),
        })
    }
}

impl Endpoint {
    pub fn new(options: &DockerOptions) -> Result<Endpoint, DockerError> {
        let endpoint = options.endpoint.trim();
        let bad = |reason: &str| DockerError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = endpoint.strip_prefix("unix://") {
            if options.tls.is_some() {
                return Err(DockerError::Tls(
                    "TLS applies to tcp:// endpoints only".into(),
                ));
            }
            if path.is_empty() {
                return Err(bad("the socket path is empty"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let address = ["tcp://", "http://", "https://"]
            .iter()
            .find_map(|scheme| endpoint.strip_prefix(scheme))
            .ok_or_else(|| bad("expected unix://, tcp:// or http://"))?;
        if address.is_empty() {
            return Err(bad("the address is empty"));
        }
        let tls = options.tls.as_ref().map(tls_files).transpose()?;
        if endpoint.starts_with("https://") && tls.is_none() {
            return Err(bad("https:// needs `tls` with ca, cert and key"));
        }
        Ok(Endpoint::Tcp {
            address: address.to_owned(),
            tls,
        })
    }
}

/// `httpClientTimeout`, whole seconds as the API client takes them; `0` (no timeout in
/// Traefik) becomes a generous two minutes so a hung engine is still noticed. The events
/// stream is not bounded by it: the timeout covers the response headers only.
pub(crate) fn request_timeout_secs(options: &DockerOptions) -> u64 {
    match options.http_client_timeout.positive() {
        None => 120,
        Some(timeout) => timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0),
    }
}

fn tls_files(tls: &ClientTls) -> Result<TlsFiles, DockerError> {
    let path = |value: &Option<String>| {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (path(&tls.ca), path(&tls.cert), path(&tls.key)) {
        (Some(ca), Some(cert), Some(key)) => Ok(TlsFiles { ca, cert, key }),
        _ => Err(DockerError::Tls(
            "ca, cert and key are all required (client certificate authentication)".into(),
        )),
    }
}
