//! The `internal` provider's configuration: the routers Traefik creates for its own services
//! (`ping@internal`, `prometheus@internal`) on their entry point, unless `manualRouting` asks
//! the user to route to them.

use viaduct_config::{DynamicConfig, HttpConfig, Router, StaticConfig};

/// Traefik's `math.MaxInt - 1`: internal routers win over every user router on their entry
/// point.
const INTERNAL_PRIORITY: i64 = i64::MAX - 1;

/// The internal routers for `config`, merged into `base` (the embedded demo, if any).
/// `None` when there is nothing to publish.
pub fn dynamic_config(config: &StaticConfig, base: Option<DynamicConfig>) -> Option<DynamicConfig> {
    let mut routers = Vec::new();
    if let Some(ping) = config.ping.as_ref().filter(|p| !p.manual_routing) {
        routers.push((
            "ping",
            &ping.entry_point,
            "PathPrefix(`/ping`)",
            "ping@internal",
        ));
    }
    let prometheus = config.metrics.as_ref().and_then(|m| m.prometheus.as_ref());
    if let Some(prometheus) = prometheus.filter(|p| !p.manual_routing) {
        routers.push((
            "prometheus",
            &prometheus.entry_point,
            "PathPrefix(`/metrics`)",
            "prometheus@internal",
        ));
    }
    if routers.is_empty() {
        return base;
    }
    let mut dynamic = base.unwrap_or_default();
    let http = dynamic.http.get_or_insert_with(HttpConfig::default);
    for (name, entry_point, rule, service) in routers {
        http.routers.insert(
            name.into(),
            Router {
                entry_points: vec![entry_point.clone()],
                rule: rule.into(),
                priority: INTERNAL_PRIORITY,
                service: service.into(),
                ..Default::default()
            },
        );
    }
    Some(dynamic)
}

#[cfg(test)]
mod tests {
    use viaduct_config::static_config::{Metrics, Ping, Prometheus};

    use super::*;

    #[test]
    fn routers_unless_manual() {
        let mut config = StaticConfig {
            ping: Some(Ping::default()),
            metrics: Some(Metrics {
                prometheus: Some(Prometheus {
                    entry_point: "metrics".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let dynamic = dynamic_config(&config, None).unwrap();
        let routers = &dynamic.http.as_ref().unwrap().routers;
        assert_eq!(routers["ping"].entry_points, vec!["traefik".to_string()]);
        assert_eq!(routers["prometheus"].service, "prometheus@internal");
        assert_eq!(
            routers["prometheus"].entry_points,
            vec!["metrics".to_string()]
        );
        config.ping.as_mut().unwrap().manual_routing = true;
        config.metrics = None;
        assert!(dynamic_config(&config, None).is_none());
    }
}
