//! The `internal` provider: the objects Viaduct defines itself, as Traefik's internal
//! provider does (the API and dashboard routers of `api.insecure`, the routers of
//! `ping@internal` and `prometheus@internal` unless `manualRouting`, the embedded demo).

use viaduct_config::{DynamicConfig, HttpConfig, Middleware, Router, Service, StaticConfig};

use crate::embedded;

/// Traefik's priorities for its own routers (`math.MaxInt - 1`, the dashboard one less): above
/// any user router on their entry point.
const API_PRIORITY: i64 = i64::MAX - 1;
const INTERNAL_PRIORITY: i64 = i64::MAX - 1;
const DASHBOARD_PRIORITY: i64 = i64::MAX - 2;

/// The internal provider's configuration; `None` when it has nothing to publish.
pub fn dynamic_config(config: &StaticConfig, embedded: bool) -> Option<DynamicConfig> {
    let mut http = if embedded {
        embedded::dynamic_config().http.unwrap_or_default()
    } else {
        HttpConfig::default()
    };
    if let Some(api) = &config.api {
        add_api(&mut http, api);
    }
    add_ping_and_metrics(&mut http, config);
    (!http.is_empty()).then(|| DynamicConfig {
        http: Some(http),
        ..Default::default()
    })
}

fn add_ping_and_metrics(http: &mut HttpConfig, config: &StaticConfig) {
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
}

fn add_api(http: &mut HttpConfig, api: &viaduct_config::static_config::Api) {
    let base = normalize_base_path(&api.base_path);
    http.services.insert("api".into(), Service::default());
    http.services.insert("noop".into(), Service::default());
    if api.dashboard {
        http.services.insert("dashboard".into(), Service::default());
    }
    if !api.insecure {
        return;
    }
    let (entry_point, _) = viaduct_config::static_config::INTERNAL_ENTRY_POINT;
    http.routers.insert(
        "api".into(),
        Router {
            entry_points: vec![entry_point.into()],
            service: "api@internal".into(),
            priority: API_PRIORITY,
            rule: format!("PathPrefix(`{base}api`)"),
            ..Default::default()
        },
    );
    if !api.dashboard {
        return;
    }
    http.routers.insert(
        "dashboard".into(),
        Router {
            entry_points: vec![entry_point.into()],
            service: "dashboard@internal".into(),
            priority: DASHBOARD_PRIORITY,
            rule: format!("PathPrefix(`{base}`)"),
            middlewares: vec![
                "dashboard_redirect@internal".into(),
                "dashboard_stripprefix@internal".into(),
            ],
            ..Default::default()
        },
    );
    http.middlewares.insert(
        "dashboard_redirect".into(),
        Middleware {
            redirect_regex: Some(serde_json::json!({
                "regex": format!(r"^(http:\/\/(\[[\w:.]+\]|[\w\._-]+)(:\d+)?){}$", regex_escape(&base)),
                "replacement": format!("${{1}}{base}dashboard/"),
                "permanent": true,
            })),
            ..Default::default()
        },
    );
    http.middlewares.insert(
        "dashboard_stripprefix".into(),
        Middleware {
            strip_prefix: Some(serde_json::json!({
                "prefixes": [format!("{base}dashboard/"), format!("{base}dashboard")],
            })),
            ..Default::default()
        },
    );
}

/// `basePath` with one `/` at each end (`/` by default).
fn normalize_base_path(raw: &str) -> String {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        format!("/{trimmed}/")
    }
}

/// `/` is escaped as Traefik writes it (`\/`); other punctuation too, to stay literal.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = c.is_ascii_punctuation() && c != '_' && c != '-';
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_api_publishes_traefiks_routers() {
        let config = StaticConfig {
            api: Some(viaduct_config::static_config::Api {
                insecure: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let http = dynamic_config(&config, false)
            .and_then(|c| c.http)
            .unwrap_or_default();
        assert_eq!(http.routers["api"].rule, "PathPrefix(`/api`)");
        assert_eq!(http.routers["dashboard"].rule, "PathPrefix(`/`)");
        let redirect = http.middlewares["dashboard_redirect"]
            .redirect_regex
            .clone();
        assert_eq!(
            redirect.and_then(|r| r.get("regex").cloned()),
            Some(serde_json::json!(
                r"^(http:\/\/(\[[\w:.]+\]|[\w\._-]+)(:\d+)?)\/$"
            ))
        );
        assert!(http.services.contains_key("noop"));
    }

    #[test]
    fn without_the_dashboard_only_the_api_router_exists() {
        let config = StaticConfig {
            api: Some(viaduct_config::static_config::Api {
                insecure: true,
                dashboard: false,
                ..Default::default()
            }),
            ..Default::default()
        };
        let http = dynamic_config(&config, false)
            .and_then(|c| c.http)
            .unwrap_or_default();
        assert_eq!(http.routers.keys().collect::<Vec<_>>(), ["api"]);
        assert!(http.middlewares.is_empty());
        assert!(!http.services.contains_key("dashboard"));
    }

    #[test]
    fn no_api_section_publishes_nothing() {
        assert!(dynamic_config(&StaticConfig::default(), false).is_none());
    }

    #[test]
    fn ping_and_metrics_routers_unless_manual() {
        use viaduct_config::static_config::{Metrics, Ping, Prometheus};
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
        let dynamic = dynamic_config(&config, false).unwrap();
        let routers = &dynamic.http.as_ref().unwrap().routers;
        assert_eq!(routers["ping"].entry_points, vec!["traefik".to_string()]);
        assert_eq!(routers["prometheus"].service, "prometheus@internal");
        assert_eq!(
            routers["prometheus"].entry_points,
            vec!["metrics".to_string()]
        );
        config.ping.as_mut().unwrap().manual_routing = true;
        config.metrics = None;
        assert!(dynamic_config(&config, false).is_none());
    }
}
