//! The endpoints: `api@internal` (the API, and the dashboard under `dashboard/`) and
//! `dashboard@internal` (the dashboard's files, behind Traefik's strip-prefix middleware).

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode, Uri};
use serde_json::{json, Map, Value};

use std::collections::BTreeMap;

use crate::listing::{percent_decode, ListQuery};
use crate::view::{Definition, ObjectInfo};
use crate::{dashboard, Api, Reply, ServerStatuses};

const JSON: &str = "application/json";

/// Answers a request to `api@internal`. `servers` is read only by the endpoints that report
/// server health.
pub fn serve_api(
    method: &Method,
    uri: &Uri,
    api: &Api,
    servers: &dyn Fn() -> ServerStatuses,
) -> Reply {
    let settings = &api.info.settings;
    let Some(rest) = uri.path().strip_prefix(settings.base_path.as_str()) else {
        return not_found_page();
    };
    if settings.dashboard {
        if rest == "dashboard" {
            return redirect(&format!("{}dashboard/", settings.base_path));
        }
        if let Some(file) = rest.strip_prefix("dashboard/") {
            return dashboard::asset(method, file);
        }
    }
    let Some(endpoint) = rest.strip_prefix("api/") else {
        return not_found_page();
    };
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    }
    let segments: Vec<&str> = endpoint.split('/').collect();
    // A name is never empty (`/api/http/routers/` is no endpoint, as in Traefik's router).
    if segments.len() > 1 && segments.last() == Some(&"") {
        return not_found_page();
    }
    let query = uri.query();
    match segments.as_slice() {
        ["version"] => version(api),
        ["overview"] => overview(api),
        ["rawdata"] => json_reply(StatusCode::OK, &rawdata(api, &servers())),
        ["entrypoints"] => {
            let items: Vec<&Value> = api.info.entry_points.iter().map(|(_, v)| v).collect();
            paged(query, items.len(), |start, end| {
                Value::Array(items[start..end].iter().map(|v| (*v).clone()).collect())
            })
        }
        ["entrypoints", name] => {
            let name = percent_decode(name);
            match api.info.entry_points.iter().find(|(n, _)| *n == name) {
                Some((_, value)) => json_reply(StatusCode::OK, value),
                None => not_found(&format!("entry point not found: {name}")),
            }
        }
        [protocol @ ("http" | "tcp" | "udp"), kind] => {
            let Some(objects) = objects_of(api, protocol, kind) else {
                return not_found_page();
            };
            let query = ListQuery::parse(query);
            let mut kept: Vec<&ObjectInfo> = objects.values().filter(|o| query.keeps(o)).collect();
            query.sort(&mut kept);
            let statuses = statuses_for(protocol, kind, servers);
            match query.page(kept.len()) {
                Ok(page) => {
                    let items = kept[page.start..page.end]
                        .iter()
                        .map(|o| representation(o, &statuses, true))
                        .collect();
                    with_next_page(json_reply(StatusCode::OK, &Value::Array(items)), page.next)
                }
                Err(message) => bad_request(&message),
            }
        }
        [protocol @ ("http" | "tcp" | "udp"), kind, name] => {
            let Some(objects) = objects_of(api, protocol, kind) else {
                return not_found_page();
            };
            let name = percent_decode(name);
            let statuses = statuses_for(protocol, kind, servers);
            match objects.get(&name) {
                Some(object) => {
                    json_reply(StatusCode::OK, &representation(object, &statuses, true))
                }
                None => not_found(&format!("{} not found: {name}", singular(kind))),
            }
        }
        _ => not_found_page(),
    }
}

/// Answers a request to `dashboard@internal`: the path is relative to the dashboard's root.
pub fn serve_dashboard(method: &Method, uri: &Uri) -> Reply {
    dashboard::asset(method, uri.path().trim_start_matches('/'))
}

fn version(api: &Api) -> Reply {
    let info = &api.info;
    let mut body = json!({
        "Version": info.version,
        "Codename": info.codename,
        "startDate": info.start_date,
    });
    if info.settings.disable_dashboard_ad {
        body["disableDashboardAd"] = json!(true);
    }
    if let Some(name) = &info.settings.dashboard_name {
        body["dashboardName"] = json!(name);
    }
    let mut reply = json_reply(StatusCode::OK, &body);
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    reply
}

fn overview(api: &Api) -> Reply {
    let runtime = &api.runtime;
    let (tcp, udp) = (&runtime.tcp, &runtime.udp);
    let zero = json!({"total": 0, "warnings": 0, "errors": 0});
    let body = json!({
        "http": {
            "routers": counts(runtime.routers.values()),
            "services": counts(runtime.services.values()),
            "middlewares": counts(runtime.middlewares.values()),
        },
        "tcp": {
            "routers": counts(tcp.routers.values()),
            "services": counts(tcp.services.values()),
            "middlewares": counts(tcp.middlewares.values()),
        },
        "udp": {
            "routers": counts(udp.routers.values()),
            "services": counts(udp.services.values()),
        },
        "certificates": zero,
        "features": {
            "tracing": api.info.tracing,
            "metrics": api.info.metrics,
            "accessLog": api.info.access_log,
        },
        "providers": api.info.providers,
    });
    json_reply(StatusCode::OK, &body)
}

fn counts<'a>(objects: impl Iterator<Item = &'a ObjectInfo>) -> Value {
    let (mut total, mut warnings, mut errors) = (0, 0, 0);
    for object in objects {
        total += 1;
        match object.status {
            crate::Status::Warning => warnings += 1,
            crate::Status::Disabled => errors += 1,
            crate::Status::Enabled => {}
        }
    }
    json!({"total": total, "warnings": warnings, "errors": errors})
}

fn rawdata(api: &Api, statuses: &ServerStatuses) -> Value {
    let mut out = Map::new();
    for (key, protocol, kind) in [
        ("routers", "http", "routers"),
        ("middlewares", "http", "middlewares"),
        ("services", "http", "services"),
        ("tcpRouters", "tcp", "routers"),
        ("tcpMiddlewares", "tcp", "middlewares"),
        ("tcpServices", "tcp", "services"),
        ("udpRouters", "udp", "routers"),
        ("udpServices", "udp", "services"),
    ] {
        let Some(objects) = objects_of(api, protocol, kind) else {
            continue;
        };
        // Go's `omitempty` on the maps; the HTTP ones always hold the internal objects.
        if objects.is_empty() && protocol != "http" {
            continue;
        }
        let section = objects
            .iter()
            .map(|(name, o)| (name.clone(), representation(o, statuses, false)))
            .collect();
        out.insert(key.into(), Value::Object(section));
    }
    Value::Object(out)
}

/// The objects behind `/api/<protocol>/<kind>`; `None` for what Traefik does not serve
/// (UDP middlewares).
fn objects_of<'a>(
    api: &'a Api,
    protocol: &str,
    kind: &str,
) -> Option<&'a BTreeMap<String, ObjectInfo>> {
    let runtime = &api.runtime;
    Some(match (protocol, kind) {
        ("http", "routers") => &runtime.routers,
        ("http", "services") => &runtime.services,
        ("http", "middlewares") => &runtime.middlewares,
        ("tcp", "routers") => &runtime.tcp.routers,
        ("tcp", "services") => &runtime.tcp.services,
        ("tcp", "middlewares") => &runtime.tcp.middlewares,
        ("udp", "routers") => &runtime.udp.routers,
        ("udp", "services") => &runtime.udp.services,
        _ => return None,
    })
}

/// Live server health is read only for the HTTP services endpoints.
fn statuses_for(
    protocol: &str,
    kind: &str,
    servers: &dyn Fn() -> ServerStatuses,
) -> ServerStatuses {
    if protocol == "http" && kind == "services" {
        servers()
    } else {
        ServerStatuses::new()
    }
}

/// An object as Traefik serialises it: its configuration, then the runtime fields. `listed`
/// adds what the list and detail endpoints add to `/api/rawdata`'s entries.
fn representation(object: &ObjectInfo, statuses: &ServerStatuses, listed: bool) -> Value {
    let mut out: Map<String, Value> = object.config();
    if !object.errors.is_empty() {
        out.insert("error".into(), json!(object.errors));
    }
    out.insert("status".into(), json!(object.status.as_str()));
    if object.is_router() {
        if !object.using.is_empty() {
            out.insert("using".into(), json!(object.using));
        }
    } else if !object.used_by.is_empty() {
        out.insert("usedBy".into(), json!(object.used_by));
    }
    if let Some(servers) = server_status(object, statuses) {
        out.insert("serverStatus".into(), servers);
    }
    if listed {
        out.insert("name".into(), json!(object.name));
        out.insert("provider".into(), json!(object.provider));
        if object.is_router() {
            if object.has_priority() {
                out.insert("priorityStr".into(), json!(object.priority.to_string()));
            }
        } else if let Some(kind) = object.kind() {
            out.insert("type".into(), json!(kind));
        }
    }
    Value::Object(out)
}

/// `serverStatus`: live health for HTTP load balancers; every server `UP` for the TCP ones
/// Traefik built.
fn server_status(object: &ObjectInfo, statuses: &ServerStatuses) -> Option<Value> {
    if object.servers_up {
        let addresses = object.server_addresses();
        let up: Map<String, Value> = addresses
            .into_iter()
            .map(|address| (address, json!("UP")))
            .collect();
        return (!up.is_empty()).then_some(Value::Object(up));
    }
    // Live health is keyed by name: only an HTTP service may read it (a router or middleware
    // can share the name).
    if !matches!(object.definition, Definition::Service(_)) {
        return None;
    }
    statuses
        .get(&object.name)
        .filter(|s| !s.is_empty())
        .map(|servers| json!(servers))
}

fn singular(kind: &str) -> &'static str {
    match kind {
        "routers" => "router",
        "services" => "service",
        _ => "middleware",
    }
}

fn paged(query: Option<&str>, len: usize, items: impl FnOnce(usize, usize) -> Value) -> Reply {
    match ListQuery::parse(query).page(len) {
        Ok(page) => with_next_page(
            json_reply(StatusCode::OK, &items(page.start, page.end)),
            page.next,
        ),
        Err(message) => bad_request(&message),
    }
}

fn with_next_page(mut reply: Reply, next: usize) -> Reply {
    reply
        .headers_mut()
        .insert("x-next-page", HeaderValue::from(next));
    reply
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut reply = Response::new(Bytes::from(bytes));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    reply
}

/// Traefik's API errors: a JSON message served as `text/plain` (Go's `http.Error`).
fn error_reply(status: StatusCode, message: &str) -> Reply {
    let body = json!({ "message": message }).to_string() + "\n";
    let mut reply = plain(status, &body);
    reply.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    reply
}

fn not_found(message: &str) -> Reply {
    error_reply(StatusCode::NOT_FOUND, message)
}

fn bad_request(message: &str) -> Reply {
    error_reply(StatusCode::BAD_REQUEST, message)
}

pub(crate) fn not_found_page() -> Reply {
    let mut reply = plain(StatusCode::NOT_FOUND, "404 page not found\n");
    reply.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    reply
}

pub(crate) fn plain(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(Bytes::from(body.to_string()));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

pub(crate) fn redirect(location: &str) -> Reply {
    let mut reply = plain(StatusCode::MOVED_PERMANENTLY, "");
    if let Ok(value) = HeaderValue::from_str(location) {
        reply.headers_mut().insert(header::LOCATION, value);
    }
    reply
}
