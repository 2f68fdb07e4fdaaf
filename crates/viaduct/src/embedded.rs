//! The embedded default: what Viaduct runs when it finds no configuration anywhere.

use viaduct_config::static_config::EntryPoint;
use viaduct_config::{DynamicConfig, HttpConfig, Router, StaticConfig};

pub const DEMO_ADDRESS: &str = ":8080";

/// Entry point `web` on `:8080`.
pub fn static_config() -> StaticConfig {
    let mut config = StaticConfig::default();
    config.entry_points.insert(
        "web".into(),
        EntryPoint {
            address: DEMO_ADDRESS.into(),
            ..Default::default()
        },
    );
    config
}

/// A catch-all router to the demo service (published by the `internal` provider).
pub fn dynamic_config() -> DynamicConfig {
    let mut http = HttpConfig::default();
    http.routers.insert(
        "demo".into(),
        Router {
            rule: "PathPrefix(`/`)".into(),
            priority: 1,
            service: "whoami@internal".into(),
            ..Default::default()
        },
    );
    DynamicConfig {
        http: Some(http),
        ..Default::default()
    }
}
