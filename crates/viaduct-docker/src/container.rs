//! The part of `docker inspect` the provider reads, in a shape independent of the API client.

use std::collections::BTreeMap;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};

/// One container as the provider sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    /// The container's name without Docker's leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `State.Status` (`running`, `exited`, `created`, `paused`, …).
    pub status: String,
    /// `State.Health.Status` when the container has a health check (`starting`, `healthy`,
    /// `unhealthy`); `None` without one.
    pub health: Option<String>,
    /// `HostConfig.NetworkMode` (`host`, `bridge`, `none`, `container:<id>`, a network name).
    pub network_mode: String,
    /// Network name → the container's IP address on it (empty when it has none).
    pub networks: BTreeMap<String, String>,
    /// Exposed ports, lowest first, with their published bindings.
    pub ports: Vec<ExposedPort>,
}

/// One exposed port (`8080/tcp`) and where it is published on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExposedPort {
    pub port: u16,
    pub protocol: String,
    pub bindings: Vec<PortBinding>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

impl Container {
    /// Reads an inspect answer; `None` when it has no name (a container being removed).
    pub fn from_inspect(inspect: ContainerInspectResponse) -> Option<Container> {
        let name = inspect.name.as_deref()?.trim_start_matches('/').to_owned();
        if name.is_empty() {
            return None;
        }
        let config = inspect.config.unwrap_or_default();
        let state = inspect.state.unwrap_or_default();
        let settings = inspect.network_settings.unwrap_or_default();
        let health = state
            .health
            .and_then(|h| h.status)
            .filter(|s| !matches!(s, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE))
            .map(|s| s.to_string());
        let networks = settings
            .networks
            .unwrap_or_default()
            .into_iter()
            .map(|(name, endpoint)| (name, endpoint.ip_address.unwrap_or_default()))
            .collect();
        // Host-network containers have no port map; their exposed ports are in the config.
        let mut ports: BTreeMap<(u16, String), Vec<PortBinding>> = BTreeMap::new();
        for spec in config.exposed_ports.unwrap_or_default() {
            if let Some(key) = parse_port(&spec) {
                ports.entry(key).or_default();
            }
        }
        for (spec, bindings) in settings.ports.unwrap_or_default() {
            let Some(key) = parse_port(&spec) else {
                continue;
            };
            let entry = ports.entry(key).or_default();
            for binding in bindings.unwrap_or_default() {
                entry.push(PortBinding {
                    host_ip: binding.host_ip.unwrap_or_default(),
                    host_port: binding.host_port.unwrap_or_default(),
                });
            }
        }
        Some(Container {
            id: inspect.id.unwrap_or_default(),
            name,
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            status: state
                .status
                .unwrap_or(ContainerStateStatusEnum::EMPTY)
                .to_string(),
            health,
            network_mode: inspect
                .host_config
                .and_then(|h| h.network_mode)
                .unwrap_or_default(),
            networks,
            ports: ports
                .into_iter()
                .map(|((port, protocol), bindings)| ExposedPort {
                    port,
                    protocol,
                    bindings,
                })
                .collect(),
        })
    }

    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// Without a health check a running container counts as healthy.
    pub fn is_healthy(&self) -> bool {
        self.health.as_deref().is_none_or(|h| h == "healthy")
    }

    pub fn is_host_network(&self) -> bool {
        self.network_mode == "host"
    }
}

/// `8080/tcp` → `(8080, "tcp")`; a bare `8080` is TCP.
fn parse_port(spec: &str) -> Option<(u16, String)> {
    let (port, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    Some((port.parse().ok()?, protocol.to_owned()))
}
