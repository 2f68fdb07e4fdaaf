//! The Docker provider: dynamic configuration from container labels, kept live through the
//! Docker Engine's events stream.
//!
//! [`build_configuration`] is the pure part (containers → configuration, as Traefik's Docker
//! provider builds it); [`DockerProvider`] talks to the engine and sends a
//! [`viaduct_providers::ProviderMessage`] whenever the result changes.

#![forbid(unsafe_code)]

mod auto;
mod constraints;
mod container;
mod labels;
mod merge;
mod provider;
mod settings;
mod stream;
mod template;

use viaduct_config::DynamicConfig;

pub use constraints::{Constraint, ConstraintError};
pub use container::{Container, ExposedPort, PortBinding};
pub use provider::DockerProvider;
pub use settings::{BuildSettings, DockerError, Endpoint, TlsFiles};
pub use template::{normalize, RuleTemplate, TemplateData, TemplateError};

/// The name the provider's objects are qualified with (`name@docker`).
pub const DOCKER_PROVIDER_NAME: &str = "docker";

/// Something wrong with one container or one object; the rest of the configuration applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A label that does not decode; only the object it belongs to is dropped (or the whole
    /// container for `traefik.enable` and `traefik.docker.*`).
    #[error("container {container}: label `{label}`: {reason}")]
    Label {
        container: String,
        label: String,
        reason: String,
    },
    /// The container cannot be configured (no port, no address…); it contributes nothing.
    #[error("container {container}: {reason}")]
    Container { container: String, reason: String },
    /// Several containers define one name differently; it is dropped.
    #[error("{kind} {name} is defined differently by containers {}; it is dropped", containers.join(", "))]
    Conflict {
        kind: &'static str,
        name: String,
        containers: Vec<String>,
    },
}

/// Builds the provider's configuration from the containers, as Traefik does: filtering
/// (`traefik.enable`/`exposedByDefault`, constraints, health, running), labels, automatic
/// router and service, servers from the containers' addresses, merging by name.
pub fn build_configuration(
    containers: &[Container],
    settings: &BuildSettings,
) -> (DynamicConfig, Vec<BuildError>) {
    let mut errors = Vec::new();
    let mut ordered: Vec<&Container> = containers.iter().collect();
    ordered.sort_by(|a, b| (auto::service_name(a), &a.id).cmp(&(auto::service_name(b), &b.id)));
    let mut merged = merge::Merged::default();
    for container in ordered {
        if let Some(config) = auto::container_config(container, settings, &mut errors) {
            merged.add(&container.name, config);
        }
    }
    let (config, conflicts) = merged.finish();
    errors.extend(conflicts);
    (config, errors)
}
