//! The routers Traefik generates for `entryPoints.X.http.redirections.entryPoint`: a
//! catch-all on the entry point that redirects to another entry point's scheme and port.

use std::sync::Arc;

use viaduct_config::static_config::RedirectEntryPoint;
use viaduct_config::{HttpConfig, Middleware, Router};
use viaduct_rules::RouterEntry;
use viaduct_upstream::{InternalService, ServiceNode};

use super::{CompileContext, ObjectStatus, TableEntry};
use crate::snapshot::Route;

pub use crate::redirect::Redirect;

/// Traefik's rule for the generated router: every request that names a host.
const CATCH_ALL: &str = "HostRegexp(`^.+$`)";

/// The generated routers and middlewares in configuration form, as Traefik's API lists them
/// (`web-to-websecure@internal`, `redirect-web-to-websecure@internal`).
pub(super) fn redirection_objects(ctx: &CompileContext) -> HttpConfig {
    let mut http = HttpConfig::default();
    for ep in &ctx.entry_points {
        let Some(config) = &ep.redirect else { continue };
        let Ok((target_name, port)) = target(ctx, config) else {
            continue;
        };
        let router = format!("{}-to-{}", ep.name, target_name);
        let middleware = format!("redirect-{router}@internal");
        http.routers.insert(
            format!("{router}@internal"),
            Router {
                entry_points: vec![ep.name.clone()],
                middlewares: vec![middleware.clone()],
                service: "noop@internal".into(),
                rule: CATCH_ALL.into(),
                priority: config.priority,
                ..Default::default()
            },
        );
        http.middlewares.insert(
            middleware,
            Middleware {
                redirect_scheme: Some(serde_json::json!({
                    "scheme": config.scheme,
                    "port": port,
                    "permanent": config.permanent,
                })),
                ..Default::default()
            },
        );
    }
    http
}

/// The target entry point's name and port (`to` is a name or `:port`).
fn target(ctx: &CompileContext, config: &RedirectEntryPoint) -> Result<(String, String), String> {
    if let Some(port) = config.to.strip_prefix(':') {
        return Ok((port.to_string(), port.to_string()));
    }
    ctx.entry_points
        .iter()
        .find(|e| e.name == config.to)
        .map(|target| (target.name.clone(), target.port.to_string()))
        .ok_or_else(|| format!("`to`: entry point {:?} does not exist", config.to))
}

pub(super) fn add_entry_point_redirections(
    ctx: &CompileContext,
    http_tables: &mut [Vec<TableEntry>],
    status: &mut ObjectStatus,
) {
    for (index, ep) in ctx.entry_points.iter().enumerate() {
        let Some(config) = &ep.redirect else { continue };
        let object = format!("entryPoints.{}.http.redirections.entryPoint", ep.name);
        let (target_name, port) = match target(ctx, config) {
            Ok(target) => target,
            Err(message) => {
                status.error(object, message);
                continue;
            }
        };
        let scheme = config.scheme.to_ascii_lowercase();
        let default_port = matches!(
            (scheme.as_str(), port.as_str()),
            ("https", "443") | ("http", "80")
        );
        let redirect = Redirect {
            scheme,
            port: (!default_port).then_some(port),
            permanent: config.permanent,
        };
        let Ok(rule) = viaduct_rules::parse_http(CATCH_ALL) else {
            continue;
        };
        let name = format!("{}-to-{}@internal", ep.name, target_name);
        let route = Arc::new(Route {
            router: name.clone(),
            service: Arc::new(ServiceNode::Internal(InternalService::Noop)),
            middlewares: None,
            redirect: Some(redirect),
            observe: None,
        });
        http_tables[index].push(RouterEntry {
            rule,
            priority: config.priority,
            tiebreak: (0, name),
            value: route,
        });
    }
}
