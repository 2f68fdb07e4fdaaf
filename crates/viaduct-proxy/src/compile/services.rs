//! Services and servers transports.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use viaduct_config::{HttpConfig, Service, WeightedService};
use viaduct_upstream::health::{HealthCheckSpec, HealthChecker};
use viaduct_upstream::sticky::Sticky;
use viaduct_upstream::{
    Child, Failover, FailoverOnStatus, HighestRandomWeight, InternalService, LoadBalancer,
    LoadBalancerOptions, Mirroring, PassivePolicy, Server, ServiceNode, Strategy, Transport,
    TransportSettings, Weighted,
};

use super::{CompileContext, ObjectStatus, DEFAULT_TRANSPORT};
use crate::snapshot::Snapshot;

pub(super) fn build_transports(
    http: &HttpConfig,
    ctx: &CompileContext,
    previous: Option<&Snapshot>,
    status: &mut ObjectStatus,
) -> HashMap<String, Arc<Transport>> {
    let mut wanted: Vec<(String, TransportSettings)> =
        vec![(DEFAULT_TRANSPORT.to_string(), ctx.default_transport.clone())];
    for (name, config) in &http.servers_transports {
        wanted.push((name.clone(), TransportSettings::from_dynamic(config)));
    }
    let mut out = HashMap::new();
    for (name, settings) in wanted {
        let reused = previous
            .and_then(|p| p.transports.get(&name))
            .filter(|t| t.settings() == &settings)
            .cloned();
        let transport = match reused {
            Some(t) => t,
            None => match Transport::new(settings) {
                Ok(t) => Arc::new(t),
                Err(e) => {
                    status.error(format!("http.serversTransports.{name}"), e.to_string());
                    continue;
                }
            },
        };
        out.insert(name, transport);
    }
    out
}

/// Builds services on demand, memoised, refusing reference cycles.
pub(super) struct ServiceBuilder<'a> {
    pub(super) definitions: &'a BTreeMap<String, Service>,
    pub(super) transports: &'a HashMap<String, Arc<Transport>>,
    /// Whether `api@internal` and `dashboard@internal` exist (the static `api` section).
    pub(super) api: bool,
    /// Lends server health state and running health checkers to the new services.
    pub(super) previous: Option<&'a Snapshot>,
    pub(super) built: HashMap<String, Result<Arc<ServiceNode>, String>>,
    pub(super) in_progress: HashSet<String>,
}

impl ServiceBuilder<'_> {
    pub(super) fn build(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        if let Some(done) = self.built.get(name) {
            return done.clone();
        }
        if !self.in_progress.insert(name.to_string()) {
            return Err(format!("service {name:?} is part of a reference cycle"));
        }
        let result = self.build_uncached(name);
        self.in_progress.remove(name);
        self.built.insert(name.to_string(), result.clone());
        result
    }

    fn build_uncached(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        if let Some(internal) = name.strip_suffix("@internal") {
            return match internal {
                "whoami" => Ok(Arc::new(ServiceNode::Internal(InternalService::Whoami))),
                "noop" => Ok(Arc::new(ServiceNode::Internal(InternalService::Noop))),
                "api" if self.api => Ok(Arc::new(ServiceNode::Internal(InternalService::Api))),
                "dashboard" if self.api => {
                    Ok(Arc::new(ServiceNode::Internal(InternalService::Dashboard)))
                }
                "api" | "dashboard" => Err(format!(
                    "the service \"{internal}@internal\" does not exist: the static configuration has no `api` section"
                )),
                "ping" => Ok(Arc::new(ServiceNode::Internal(InternalService::Ping))),
                "prometheus" => Ok(Arc::new(ServiceNode::Internal(InternalService::Prometheus))),
                other => Err(format!(
                    "the internal service {other:?} is not available yet"
                )),
            };
        }
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| format!("the service {name:?} does not exist"))?;
        let kinds = [
            definition.load_balancer.is_some(),
            definition.weighted.is_some(),
            definition.mirroring.is_some(),
            definition.failover.is_some(),
            definition.highest_random_weight.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => return Err("the service defines no kind (loadBalancer, weighted, …)".into()),
            1 => {}
            _ => return Err("the service defines more than one kind".into()),
        }
        if !definition.middlewares.is_empty() {
            return Err("service middlewares are not supported yet".into());
        }
        let node = if let Some(lb) = &definition.load_balancer {
            ServiceNode::LoadBalancer(self.load_balancer(name, lb)?)
        } else if let Some(weighted) = &definition.weighted {
            let health_check = weighted.health_check.is_some();
            let children = self.children(name, &weighted.services, health_check)?;
            let sticky = weighted
                .sticky
                .as_ref()
                .and_then(|s| s.cookie.as_ref())
                .map(|cookie| {
                    let members: Vec<String> = weighted
                        .services
                        .iter()
                        .map(|c| as_written(&c.name, name))
                        .collect();
                    Sticky::new(cookie, name, &members)
                });
            ServiceNode::Weighted(Weighted::new(
                name.to_string(),
                children,
                sticky,
                health_check,
            ))
        } else if let Some(hrw) = &definition.highest_random_weight {
            let health_check = hrw.health_check.is_some();
            ServiceNode::HighestRandomWeight(HighestRandomWeight {
                name: name.to_string(),
                children: self.children(name, &hrw.services, health_check)?,
                health_check,
            })
        } else if let Some(mirroring) = &definition.mirroring {
            ServiceNode::Mirroring(self.mirroring(name, mirroring)?)
        } else if let Some(failover) = &definition.failover {
            ServiceNode::Failover(self.failover(name, failover)?)
        } else {
            return Err("the service defines no kind".into());
        };
        Ok(Arc::new(node))
    }

    fn children(
        &mut self,
        parent: &str,
        services: &[WeightedService],
        health_check: bool,
    ) -> Result<Vec<Child>, String> {
        let mut children = Vec::with_capacity(services.len());
        for child in services {
            let weight =
                weight_of(child.weight).map_err(|e| format!("service {:?}: {e}", child.name))?;
            let node = self.build(&child.name)?;
            if health_check && !node.reports_health() {
                return Err(not_reporting(&child.name, parent));
            }
            children.push(Child {
                name: child.name.clone(),
                node,
                weight,
            });
        }
        Ok(children)
    }

    fn mirroring(
        &mut self,
        name: &str,
        config: &viaduct_config::Mirroring,
    ) -> Result<Mirroring, String> {
        let main = self.build(&config.service)?;
        let mut mirrors = Vec::with_capacity(config.mirrors.len());
        for mirror in &config.mirrors {
            let percent = u64::try_from(mirror.percent)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| {
                    format!(
                        "mirror {:?}: percent {} must be between 0 and 100",
                        mirror.name, mirror.percent
                    )
                })?;
            mirrors.push((mirror.name.clone(), self.build(&mirror.name)?, percent));
        }
        let max_body_size = config.max_body_size.and_then(|m| u64::try_from(m).ok());
        Ok(Mirroring::new(
            name.to_string(),
            main,
            mirrors,
            config.mirror_body,
            max_body_size,
            config.health_check.is_some(),
        ))
    }

    fn failover(
        &mut self,
        name: &str,
        config: &viaduct_config::Failover,
    ) -> Result<Failover, String> {
        let main = self.build(&config.service)?;
        let on_status = config
            .errors
            .as_ref()
            .filter(|e| !e.status.is_empty())
            .map(|e| FailoverOnStatus::parse(&e.status, e.max_request_body_bytes))
            .transpose()
            .map_err(|e| e.to_string())?;
        let errors_defined = on_status.is_some();
        if !main.reports_health() && !errors_defined {
            return Err(not_reporting(&config.service, name));
        }
        let fallback = self.build(&config.fallback)?;
        if config.health_check.is_some() && !fallback.reports_health() {
            return Err(not_reporting(&config.fallback, name));
        }
        Ok(Failover {
            name: name.to_string(),
            main,
            fallback,
            health_check: config.health_check.is_some(),
            on_status,
        })
    }

    fn load_balancer(
        &mut self,
        name: &str,
        lb: &viaduct_config::LoadBalancer,
    ) -> Result<LoadBalancer, String> {
        let mut servers = Vec::with_capacity(lb.servers.len());
        for (i, server) in lb.servers.iter().enumerate() {
            let weight = weight_of(server.weight).map_err(|e| format!("servers[{i}]: {e}"))?;
            if server.url.is_empty() {
                return Err(format!("servers[{i}]: the url is empty"));
            }
            servers.push(
                Server::parse(&server.url, weight, server.preserve_path)
                    .map_err(|e| e.to_string())?,
            );
        }
        let transport_name = lb.servers_transport.as_deref().unwrap_or(DEFAULT_TRANSPORT);
        let transport = self
            .transports
            .get(transport_name)
            .cloned()
            .ok_or_else(|| format!("the servers transport {transport_name:?} does not exist"))?;
        let strategy = Strategy::parse(lb.strategy.as_deref()).map_err(|e| e.to_string())?;
        let health_check = lb
            .health_check
            .as_ref()
            .map(|check| HealthCheckSpec::from_config(check))
            .transpose()
            .map_err(|e| e.to_string())?
            .map(Arc::new);
        let passive = lb.passive_health_check.as_ref().map(|p| PassivePolicy {
            failure_window: p
                .failure_window
                .and_then(|w| w.positive())
                .unwrap_or(Duration::from_secs(10)),
            max_failed_attempts: p
                .max_failed_attempts
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(1),
        });
        let previous = self.previous_balancer(name);
        // Health is carried over only while something still judges it: a server set aside
        // by a check that was since removed must not stay down forever.
        if health_check.is_some() || passive.is_some() {
            for server in &mut servers {
                if let Some(state) = previous.and_then(|p| p.state_of(&server.url)) {
                    server.state = state.clone();
                }
            }
        }
        let mut checkers = Vec::new();
        if let Some(spec) = &health_check {
            for server in &servers {
                let running = previous
                    .filter(|p| Arc::ptr_eq(&p.transport, &transport))
                    .and_then(|p| p.checker_for(server, spec))
                    .cloned();
                let checker = running.or_else(|| {
                    HealthChecker::spawn(
                        name,
                        server,
                        spec.clone(),
                        transport.clone(),
                        server.state.clone(),
                    )
                });
                checkers.extend(checker);
            }
        }
        let sticky = lb
            .sticky
            .as_ref()
            .and_then(|s| s.cookie.as_ref())
            .map(|cookie| {
                let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
                Sticky::new(cookie, name, &urls)
            });
        Ok(LoadBalancer::with_options(
            name.to_string(),
            servers,
            lb.pass_host_header,
            transport,
            LoadBalancerOptions {
                strategy,
                sticky,
                passive,
                health_check,
                checkers,
            },
        ))
    }

    fn previous_balancer(&self, name: &str) -> Option<&LoadBalancer> {
        match self.previous?.services.get(name)?.as_ref() {
            ServiceNode::LoadBalancer(lb) => Some(lb),
            _ => None,
        }
    }
}

impl viaduct_middlewares::ServiceResolver for ServiceBuilder<'_> {
    fn service(&mut self, name: &str) -> Result<Arc<ServiceNode>, String> {
        self.build(name)
    }
}

fn weight_of(weight: Option<i64>) -> Result<u64, String> {
    match weight {
        None => Ok(1),
        Some(w) => u64::try_from(w).map_err(|_| format!("weight {w} is negative")),
    }
}

fn not_reporting(child: &str, parent: &str) -> String {
    format!(
        "child service {child:?} of {parent:?} does not report its health (it needs a healthCheck)"
    )
}

/// A child's name as its parent's provider wrote it: Traefik hashes that name into sticky
/// cookies, while references here are qualified (`child@file`).
fn as_written(child: &str, parent: &str) -> String {
    let provider = parent.rsplit_once('@').map(|(_, p)| p);
    match (child.rsplit_once('@'), provider) {
        (Some((bare, p)), Some(parent_provider)) if p == parent_provider => bare.to_string(),
        _ => child.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{compile, CompileContext, EntryPointInfo};
    use super::*;
    use crate::entrypoint::Protocol;
    use viaduct_config::{parse_document, DynamicConfig, Format, Origin};
    use viaduct_tls::TlsShared;

    fn ctx() -> CompileContext {
        CompileContext {
            entry_points: vec![EntryPointInfo {
                name: "web".into(),
                as_default: true,
                protocol: Protocol::Tcp,
                port: 80,
                default_tls: None,
                redirect: None,
            }],
            default_transport: TransportSettings::from_static(&Default::default()),
            tls: Arc::new(TlsShared::new().unwrap()),
            api: None,
            observe: Default::default(),
            tcp_transport: Default::default(),
        }
    }

    fn dynamic(yaml: &str) -> DynamicConfig {
        parse_document(yaml, Format::Yaml, Origin::Inline("test")).unwrap()
    }

    fn balancer<'a>(snapshot: &'a Snapshot, name: &str) -> &'a LoadBalancer {
        match snapshot.services[name].as_ref() {
            ServiceNode::LoadBalancer(lb) => lb,
            other => panic!("{name} is not a load balancer: {other:?}"),
        }
    }

    const CHECKED: &str = r#"
http:
  services:
    s@file:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:1"}, {url: "http://127.0.0.1:2"}]
        healthCheck: {path: /health, interval: 1h}
"#;

    #[tokio::test]
    async fn checkers_and_health_survive_a_reload_and_stop_with_the_last_snapshot() {
        let first = compile(&dynamic(CHECKED), &ctx(), None, 1);
        assert!(first.status.is_clean(), "{:?}", first.status);
        let lb = balancer(&first, "s@file");
        assert_eq!(lb.checkers().len(), 2);
        let state = lb.servers[1].state.clone();
        // What a failed check records:
        let policy = PassivePolicy {
            failure_window: Duration::from_secs(60),
            max_failed_attempts: 1,
        };
        state.record_outcome(true, &policy, false);
        assert!(!state.is_available());

        let second = compile(&dynamic(CHECKED), &ctx(), Some(&first), 2);
        let next = balancer(&second, "s@file");
        assert!(Arc::ptr_eq(&next.servers[1].state, &state), "state kept");
        assert!(
            Arc::ptr_eq(&next.checkers()[0], &lb.checkers()[0]),
            "checker kept"
        );
        assert_eq!(
            second.server_statuses()["s@file"]["http://127.0.0.1:2"],
            viaduct_upstream::ServerStatus::Down
        );

        // A changed check replaces the checker but keeps the state.
        let changed = CHECKED.replace("interval: 1h", "interval: 2h");
        let third = compile(&dynamic(&changed), &ctx(), Some(&second), 3);
        let last = balancer(&third, "s@file");
        assert!(!Arc::ptr_eq(&last.checkers()[0], &next.checkers()[0]));
        assert!(Arc::ptr_eq(&last.servers[1].state, &state));

        // Held by: the three snapshots' servers, and the two checker tasks (old and new).
        drop((first, second, third));
        tokio::task::yield_now().await;
        for _ in 0..100 {
            if Arc::strong_count(&state) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(Arc::strong_count(&state), 1, "checker tasks stopped");
    }

    #[test]
    fn parents_need_children_that_report_health() {
        let yaml = r#"
http:
  services:
    plain@file:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:1"}]
    checked@file:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:2"}]
        healthCheck: {path: /}
    fo@file:
      failover: {service: plain@file, fallback: checked@file}
    good@file:
      failover: {service: checked@file, fallback: plain@file}
    w@file:
      weighted:
        services: [{name: plain@file}]
        healthCheck: {}
    tcp@file:
      loadBalancer:
        servers: [{url: "http://127.0.0.1:3"}]
        healthCheck: {path: /, mode: tcp}
    bad@file:
      mirroring:
        service: plain@file
        mirrors: [{name: checked@file, percent: 101}]
"#;
        let snapshot = compile(&dynamic(yaml), &ctx(), None, 1);
        let errors = &snapshot.status.errors;
        for broken in ["fo@file", "w@file", "tcp@file", "bad@file"] {
            assert!(
                errors.contains_key(&format!("http.services.{broken}")),
                "{broken}: {errors:?}"
            );
        }
        assert!(
            !errors.contains_key("http.services.good@file"),
            "{errors:?}"
        );
        assert!(errors["http.services.tcp@file"][0].contains("http or grpc"));
    }

    #[test]
    fn sticky_members_are_named_as_written() {
        assert_eq!(as_written("a@file", "w@file"), "a");
        assert_eq!(as_written("a@docker", "w@file"), "a@docker");
        assert_eq!(as_written("a", "w"), "a");
    }
}
