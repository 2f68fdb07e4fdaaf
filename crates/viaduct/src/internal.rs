//! The `internal` provider: the objects Viaduct defines itself, as Traefik's internal
//! provider does (the API and dashboard routers of `api.insecure`, the embedded demo).

use viaduct_config::{DynamicConfig, HttpConfig, Middleware, Router, Service, StaticConfig};

use crate::embedded;

/// Traefik's priorities for its API and dashboard routers: above any user router.
const API_PRIORITY: i64 = i64::MAX - 1;
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
    (!http.is_empty()).then(|| DynamicConfig {
        http: Some(http),
        ..Default::default()
    })
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
}
