//! The routers Traefik generates for `entryPoints.X.http.redirections.entryPoint`: a
//! catch-all on the entry point that redirects to another entry point's scheme and port.

use std::sync::Arc;

use viaduct_rules::RouterEntry;
use viaduct_upstream::{InternalService, ServiceNode};

use super::{CompileContext, ObjectStatus, TableEntry};
use crate::snapshot::Route;

pub use crate::redirect::Redirect;

/// Traefik's rule for the generated router: every request that names a host.
const CATCH_ALL: &str = "HostRegexp(`^.+$`)";

pub(super) fn add_entry_point_redirections(
    ctx: &CompileContext,
    http_tables: &mut [Vec<TableEntry>],
    status: &mut ObjectStatus,
) {
    for (index, ep) in ctx.entry_points.iter().enumerate() {
        let Some(config) = &ep.redirect else { continue };
        let object = format!("entryPoints.{}.http.redirections.entryPoint", ep.name);
        let (target_name, port) = if let Some(port) = config.to.strip_prefix(':') {
            (port.to_string(), port.to_string())
        } else {
            match ctx.entry_points.iter().find(|e| e.name == config.to) {
                Some(target) => (target.name.clone(), target.port.to_string()),
                None => {
                    status.error(
                        object,
                        format!("`to`: entry point {:?} does not exist", config.to),
                    );
                    continue;
                }
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
