//! One container's configuration: its labels plus what Traefik creates automatically — a
//! service named after the container with the container's address as server, a router with
//! the `defaultRule`, and routers linked to the only service.

use std::collections::BTreeMap;

use viaduct_config::{DynamicConfig, HttpConfig, LoadBalancer, Router, Server, Service};

use crate::labels::{self, ContainerLabels};
use crate::stream::{Parts, StreamConfig, StreamRouter, StreamServer, StreamService};
use crate::template::{normalize, TemplateData};
use crate::{BuildError, BuildSettings, Container};

/// Builds one container's configuration, or `None` when the container is filtered out or
/// unusable (the reason, if it is an error, is pushed to `errors`).
pub(crate) fn container_config(
    container: &Container,
    settings: &BuildSettings,
    errors: &mut Vec<BuildError>,
) -> Option<DynamicConfig> {
    let read = match labels::read(container) {
        Ok(read) => read,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    if !keep(container, &read, settings) {
        return None;
    }
    let report = |errors: &mut Vec<BuildError>, reason: String| {
        errors.push(BuildError::Container {
            container: container.name.clone(),
            reason,
        })
    };
    let ContainerLabels {
        network,
        allow_non_running,
        ..
    } = read;
    if !container.is_running() && !allow_non_running {
        return None;
    }
    let mut config = labels::decode(container, errors);
    let endpoint = Endpoint {
        container,
        network: network.as_deref().or(settings.network.as_deref()),
        settings,
        // Stopped (`allownonrunning`) and unhealthy containers keep their objects, not servers.
        serves: container.is_running() && container.is_healthy(),
    };
    let name = service_name(container);

    let mut tcp_or_udp = false;
    if let Some(tcp) = config.tcp.as_mut().filter(|tcp| !tcp.is_empty()) {
        tcp_or_udp = true;
        match build_stream(tcp, &name, &endpoint) {
            Ok(dropped) => dropped.into_iter().for_each(|r| report(errors, r)),
            Err(reason) => {
                report(errors, reason);
                return None;
            }
        }
    }
    if let Some(udp) = config.udp.as_mut().filter(|udp| !udp.is_empty()) {
        tcp_or_udp = true;
        match build_stream(udp, &name, &endpoint) {
            Ok(dropped) => dropped.into_iter().for_each(|r| report(errors, r)),
            Err(reason) => {
                report(errors, reason);
                return None;
            }
        }
    }
    let http_given = config.http.as_ref().is_some_and(|http| {
        !http.routers.is_empty() || !http.services.is_empty() || !http.middlewares.is_empty()
    });
    if tcp_or_udp && !http_given {
        return Some(config);
    }
    let http = config.http.get_or_insert_with(HttpConfig::default);
    if let Err(reason) = build_http_services(http, &name, &endpoint) {
        report(errors, reason);
        return None;
    }
    let data = TemplateData {
        name: &name,
        container_name: &container.name,
        labels: &container.labels,
    };
    build_http_routers(http, &name, settings, &data, errors, &container.name);
    Some(config)
}

/// The name of the automatic router and service: `<compose service>-<project>` for compose
/// containers, else the container name; normalized.
pub(crate) fn service_name(container: &Container) -> String {
    let label = |key: &str| container.labels.get(key).filter(|v| !v.is_empty());
    match (
        label("com.docker.compose.service"),
        label("com.docker.compose.project"),
    ) {
        (Some(service), Some(project)) => normalize(&format!("{service}_{project}")),
        _ => normalize(&container.name),
    }
}

/// `traefik.enable` (else `exposedByDefault`), the constraints, and health unless
/// `allowEmptyServices`.
fn keep(container: &Container, read: &ContainerLabels, settings: &BuildSettings) -> bool {
    if !read.enable.unwrap_or(settings.exposed_by_default) {
        return false;
    }
    if let Some(constraints) = &settings.constraints {
        if !constraints.matches(&container.labels) {
            return false;
        }
    }
    settings.allow_empty_services || container.is_healthy()
}

/// Where a container's servers are reached.
struct Endpoint<'a> {
    container: &'a Container,
    network: Option<&'a str>,
    settings: &'a BuildSettings,
    serves: bool,
}

impl Endpoint<'_> {
    /// The IP and port of the server whose port label is `server_port` (empty: the lowest
    /// exposed port).
    fn ip_port(&self, server_port: &str) -> Result<(String, String), String> {
        if self.settings.use_bind_port_ip {
            if let Some(binding) = self.binding(server_port) {
                if !binding.host_ip.is_empty() && binding.host_ip != "0.0.0.0" {
                    return Ok((binding.host_ip.clone(), binding.host_port.clone()));
                }
            }
            tracing::debug!(container = %self.container.name, "no usable port binding, using the container's own address");
        }
        let port = self.port(server_port).ok_or("port is missing")?;
        let ip = self.ip().ok_or("the service is missing an IP address")?;
        Ok((ip, port))
    }

    fn port(&self, server_port: &str) -> Option<String> {
        if !server_port.is_empty() {
            return Some(server_port.to_owned());
        }
        self.container.ports.first().map(|p| p.port.to_string())
    }

    fn binding(&self, server_port: &str) -> Option<&crate::PortBinding> {
        let port = self.port(server_port)?;
        self.container
            .ports
            .iter()
            .filter(|p| p.port.to_string() == port)
            .find_map(|p| p.bindings.first())
    }

    fn ip(&self) -> Option<String> {
        let container = self.container;
        if let Some(network) = self.network {
            match container.networks.get(network) {
                Some(ip) => return Some(ip.clone()).filter(|ip| !ip.is_empty()),
                None => tracing::warn!(
                    container = %container.name,
                    network,
                    "the container is not on this network; using its first network"
                ),
            }
        }
        if container.is_host_network() {
            return Some(self.settings.host_ip.clone());
        }
        container
            .networks
            .values()
            .find(|ip| !ip.is_empty())
            .cloned()
    }

    fn join(ip: &str, port: &str) -> String {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    }
}

fn build_http_services(
    http: &mut HttpConfig,
    name: &str,
    endpoint: &Endpoint<'_>,
) -> Result<(), String> {
    if http.services.is_empty() {
        let service = Service {
            load_balancer: Some(LoadBalancer::default()),
            ..Default::default()
        };
        http.services.insert(name.to_owned(), service);
    }
    for (service_name, service) in &mut http.services {
        let Some(balancer) = service.load_balancer.as_mut() else {
            continue;
        };
        if balancer.servers.is_empty() {
            balancer.servers.push(Server::default());
        }
        let server = &mut balancer.servers[0];
        let port = server.port.take().unwrap_or_default();
        let scheme = server.scheme.take().unwrap_or_else(|| "http".into());
        if !endpoint.serves {
            balancer.servers.clear();
            continue;
        }
        if server.url.is_empty() {
            let (ip, port) = endpoint
                .ip_port(&port)
                .map_err(|e| format!("service {service_name}: {e}"))?;
            server.url = format!("{scheme}://{}", Endpoint::join(&ip, &port));
        }
    }
    Ok(())
}

fn build_http_routers(
    http: &mut HttpConfig,
    name: &str,
    settings: &BuildSettings,
    data: &TemplateData<'_>,
    errors: &mut Vec<BuildError>,
    container: &str,
) {
    if http.routers.is_empty() {
        if http.services.len() > 1 {
            tracing::info!(
                container,
                "no router created for the container: it has several services"
            );
        } else {
            http.routers.insert(name.to_owned(), Router::default());
        }
    }
    let only_service = single_key(&http.services);
    let mut dropped = Vec::new();
    for (router_name, router) in &mut http.routers {
        if router.rule.is_empty() {
            match settings.default_rule.render(data) {
                Ok(rule) if !rule.is_empty() => router.rule = rule,
                Ok(_) => dropped.push((
                    router_name.clone(),
                    "the defaultRule gives an empty rule".into(),
                )),
                Err(e) => dropped.push((router_name.clone(), format!("defaultRule: {e}"))),
            }
        }
        if router.service.is_empty() {
            match &only_service {
                Some(service) => router.service = service.clone(),
                None => dropped.push((
                    router_name.clone(),
                    format!(
                        "cannot be linked automatically with several services: {:?}",
                        http.services.keys().collect::<Vec<_>>()
                    ),
                )),
            }
        }
    }
    for (router, reason) in dropped {
        http.routers.remove(&router);
        errors.push(BuildError::Container {
            container: container.to_owned(),
            reason: format!("router {router}: {reason}"),
        });
    }
}

/// Sets up a container's TCP or UDP services: a service named after the container when there
/// is none, the container's address for servers given by port only. `Ok` holds the routers
/// dropped because they cannot be linked to a service.
fn build_stream<C: StreamConfig>(
    config: &mut C,
    name: &str,
    endpoint: &Endpoint<'_>,
) -> Result<Vec<String>, String> {
    let Parts { routers, services } = config.parts();
    if services.is_empty() {
        services.insert(name.to_owned(), C::Service::with_load_balancer());
    }
    for (service_name, service) in services.iter_mut() {
        let Some(servers) = service.servers_mut() else {
            continue;
        };
        if servers.is_empty() {
            servers.push(Default::default());
        }
        let port = servers[0].port_mut().take().unwrap_or_default();
        if !endpoint.serves {
            servers.clear();
            continue;
        }
        if servers[0].address().is_empty() {
            let (ip, port) = endpoint
                .ip_port(&port)
                .map_err(|e| format!("{} service {service_name}: {e}", C::PROTOCOL))?;
            *servers[0].address_mut() = Endpoint::join(&ip, &port);
        }
    }
    let unlinked = link_routers(
        routers.iter_mut().map(|(n, r)| (n, r.service_mut())),
        &single_key(services),
    );
    Ok(unlinked
        .into_iter()
        .map(|router| {
            routers.remove(&router);
            format!(
                "{} router {router}: cannot be linked automatically with several services",
                C::PROTOCOL
            )
        })
        .collect())
}

/// Gives routers without a service the only service; returns those left without one.
fn link_routers<'a>(
    routers: impl Iterator<Item = (&'a String, &'a mut String)>,
    only_service: &Option<String>,
) -> Vec<String> {
    let mut unlinked = Vec::new();
    for (router, service) in routers {
        if service.is_empty() {
            match only_service {
                Some(only) => *service = only.clone(),
                None => unlinked.push(router.clone()),
            }
        }
    }
    unlinked
}

fn single_key<T>(map: &BTreeMap<String, T>) -> Option<String> {
    match map.len() {
        1 => map.keys().next().cloned(),
        _ => None,
    }
}
