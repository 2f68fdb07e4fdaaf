//! The TCP and UDP side of the runtime view: routers, services and middlewares with their
//! status and relations, as Traefik's runtime reports them.

use std::collections::{BTreeMap, BTreeSet};

use viaduct_config::{TcpConfig, TcpService, UdpConfig};

use crate::view::{reported, Definition, EntryPointFacts, ObjectInfo, ObjectSet, Problems};

/// Traefik gives a router without a priority its rule's length, except the catch-all, which
/// must come after every other router.
const CATCH_ALL: &str = "HostSNI(`*`)";

pub(crate) fn tcp_objects(
    tcp: &TcpConfig,
    problems: Problems<'_>,
    entry_points: &[EntryPointFacts],
    default_entry_points: &[String],
) -> ObjectSet {
    let routers: BTreeMap<String, ObjectInfo> = tcp
        .routers
        .iter()
        .map(|(name, router)| {
            let declared = if router.entry_points.is_empty() {
                default_entry_points.to_vec()
            } else {
                router.entry_points.clone()
            };
            let using = attached(&declared, entry_points, true);
            // Traefik fills the default in when it places the router: one on no entry point
            // keeps the priority it was given.
            let priority = match router.priority {
                0 if using.is_empty() => 0,
                0 if router.rule == CATCH_ALL => -1,
                0 => i64::try_from(router.rule.len()).unwrap_or(i64::MAX),
                explicit => explicit,
            };
            let info = ObjectInfo {
                using,
                entry_points: declared,
                priority,
                ..reported(
                    "tcp.routers",
                    name,
                    Definition::TcpRouter(router.clone()),
                    problems,
                )
            };
            (name.clone(), info)
        })
        .collect();
    let built = built_services(&tcp.services, &routers);
    let mut services: BTreeMap<String, ObjectInfo> = tcp
        .services
        .iter()
        .map(|(name, service)| {
            let definition = Definition::TcpService(service.clone());
            let info = ObjectInfo {
                servers_up: service.load_balancer.is_some() && built.contains(name.as_str()),
                ..reported("tcp.services", name, definition, problems)
            };
            (name.clone(), info)
        })
        .collect();
    // Traefik fills `usedBy` for TCP services but never for TCP middlewares.
    let middlewares = tcp
        .middlewares
        .iter()
        .map(|(name, middleware)| {
            let definition = Definition::TcpMiddleware(middleware.clone());
            (
                name.clone(),
                reported("tcp.middlewares", name, definition, problems),
            )
        })
        .collect();
    link_services(&routers, &mut services);
    ObjectSet {
        routers,
        services,
        middlewares,
    }
}

pub(crate) fn udp_objects(
    udp: &UdpConfig,
    problems: Problems<'_>,
    entry_points: &[EntryPointFacts],
) -> ObjectSet {
    let every_udp: Vec<String> = entry_points
        .iter()
        .filter(|ep| !ep.is_tcp)
        .map(|ep| ep.name.clone())
        .collect();
    let routers: BTreeMap<String, ObjectInfo> = udp
        .routers
        .iter()
        .map(|(name, router)| {
            // Traefik leaves `entryPoints` as written for UDP and attaches a router that names
            // none to every UDP entry point.
            let using = if router.entry_points.is_empty() {
                every_udp.clone()
            } else {
                attached(&router.entry_points, entry_points, false)
            };
            let info = ObjectInfo {
                using,
                entry_points: router.entry_points.clone(),
                ..reported(
                    "udp.routers",
                    name,
                    Definition::UdpRouter(router.clone()),
                    problems,
                )
            };
            (name.clone(), info)
        })
        .collect();
    let mut services = udp
        .services
        .iter()
        .map(|(name, service)| {
            let definition = Definition::UdpService(service.clone());
            (
                name.clone(),
                reported("udp.services", name, definition, problems),
            )
        })
        .collect();
    link_services(&routers, &mut services);
    ObjectSet {
        routers,
        services,
        middlewares: BTreeMap::new(),
    }
}

/// The entry points among `declared` that exist with the router's protocol.
fn attached(declared: &[String], entry_points: &[EntryPointFacts], tcp: bool) -> Vec<String> {
    declared
        .iter()
        .filter(|ep| {
            entry_points
                .iter()
                .any(|e| &e.name == *ep && e.is_tcp == tcp)
        })
        .cloned()
        .collect()
}

/// `usedBy`: the routers that name the service directly.
fn link_services(
    routers: &BTreeMap<String, ObjectInfo>,
    services: &mut BTreeMap<String, ObjectInfo>,
) {
    for (router_name, router) in routers {
        if let Some(service) = services.get_mut(router.service()) {
            service.used_by.push(router_name.clone());
        }
    }
}

/// The services Traefik builds: those reached, directly or through weighted services, from a
/// router placed on at least one entry point.
fn built_services<'a>(
    services: &'a BTreeMap<String, TcpService>,
    routers: &BTreeMap<String, ObjectInfo>,
) -> BTreeSet<&'a str> {
    let mut pending: Vec<&str> = routers
        .values()
        .filter(|r| !r.using.is_empty())
        .map(|r| r.service())
        .collect();
    let mut built = BTreeSet::new();
    while let Some(name) = pending.pop() {
        let Some((key, service)) = services.get_key_value(name) else {
            continue;
        };
        if !built.insert(key.as_str()) {
            continue;
        }
        if let Some(weighted) = &service.weighted {
            pending.extend(weighted.services.iter().map(|child| child.name.as_str()));
        }
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn eps() -> Vec<EntryPointFacts> {
        [("web", true), ("traefik", true), ("dns", false)]
            .iter()
            .map(|(n, tcp)| EntryPointFacts {
                name: n.to_string(),
                as_default: false,
                is_tcp: *tcp,
            })
            .collect()
    }

    #[test]
    fn tcp_routers_get_traefiks_defaults_and_services_their_users() {
        let tcp: TcpConfig = serde_json::from_value(json!({
            "routers": {
                "all@file": {"rule": "HostSNI(`*`)", "service": "w@file"},
                "bad@file": {"rule": "HostSNI(`x`", "service": "lb@file", "entryPoints": ["dns"]}
            },
            "services": {
                "w@file": {"weighted": {"services": [{"name": "lb@file"}]}},
                "lb@file": {"loadBalancer": {"servers": [{"address": "a:1", "port": "1"}]}},
                "idle@file": {"loadBalancer": {"servers": [{"address": "b:1"}]}}
            },
            "middlewares": {"m@file": {"inFlightConn": {"amount": 1}}}
        }))
        .unwrap();
        let errors = BTreeMap::from([("tcp.routers.bad@file".to_string(), vec!["x".into()])]);
        let warnings = BTreeMap::new();
        let problems = Problems {
            errors: &errors,
            warnings: &warnings,
        };
        let set = tcp_objects(&tcp, problems, &eps(), &["web".to_string()]);
        let all = &set.routers["all@file"];
        assert_eq!(all.priority, -1);
        assert_eq!(all.using, vec!["web"]);
        assert_eq!(all.config()["service"], json!("w"));
        assert_eq!(all.config()["entryPoints"], json!(["web"]));
        let bad = &set.routers["bad@file"];
        assert!(bad.using.is_empty());
        // Placed nowhere: Traefik never fills its priority in.
        assert_eq!(bad.priority, 0);
        assert_eq!(set.services["lb@file"].used_by, vec!["bad@file"]);
        // Reached through the weighted service of a placed router; `idle` is never built.
        assert!(set.services["lb@file"].servers_up);
        assert!(!set.services["idle@file"].servers_up);
        assert_eq!(
            set.services["lb@file"].config()["loadBalancer"],
            json!({"servers": [{"address": "a:1"}]})
        );
        assert_eq!(
            set.middlewares["m@file"].kind().as_deref(),
            Some("inflightconn")
        );
    }

    #[test]
    fn udp_routers_keep_entry_points_as_written() {
        let udp: UdpConfig = serde_json::from_value(json!({
            "routers": {"r@file": {"service": "s@file"}},
            "services": {"s@file": {"loadBalancer": {"servers": [{"address": "a:1"}]}}}
        }))
        .unwrap();
        let empty = BTreeMap::new();
        let problems = Problems {
            errors: &empty,
            warnings: &empty,
        };
        let set = udp_objects(&udp, problems, &eps());
        let router = &set.routers["r@file"];
        assert_eq!(router.using, vec!["dns"]);
        assert_eq!(
            router.config(),
            json!({"service": "s"}).as_object().unwrap().clone()
        );
        assert_eq!(set.services["s@file"].used_by, vec!["r@file"]);
    }
}
