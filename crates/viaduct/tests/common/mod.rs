//! Shared pieces of the end-to-end suite: which proxy runs, the standard static configuration,
//! and bounded waits for routing to be in place.

#![allow(dead_code)] // each test binary uses its own subset

pub mod api;
pub mod tls;

use std::time::Duration;

use viaduct_testkit::{EchoBackend, HttpClient, ProxyKind, ProxyUnderTest, Reply, RequestSpec};

/// The service `echo` on the server `{{echo}}`, as the end of an `http:` section: a literal,
/// for `concat!` into other configurations.
macro_rules! echo_service {
    () => {
        r#"  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#
    };
}
#[allow(unused_imports)] // each test binary uses its own subset
pub(crate) use echo_service;

/// How long any configuration may take to become active.
pub const ROUTING_TIMEOUT: Duration = Duration::from_secs(10);

/// The proxy these tests drive: Viaduct, or Traefik with `VIADUCT_E2E_PROXY=traefik`.
pub fn kind() -> ProxyKind {
    ProxyKind::under_test(env!("CARGO_BIN_EXE_viaduct"))
}

pub fn viaduct() -> ProxyKind {
    ProxyKind::Viaduct(env!("CARGO_BIN_EXE_viaduct").into())
}

/// One entry point `web`, the watched file provider with a short throttle, debug logs, and no
/// phoning home. `extra_entry_point` is YAML appended under `entryPoints.web` (6-space indent).
pub fn static_config(extra_entry_point: &str) -> String {
    static_config_with(
        extra_entry_point,
        "  file:\n    filename: \"{{dynamic_file}}\"\n    watch: true\n",
    )
}

/// As [`static_config`], with `providers` (YAML under `providers:`, 2-space indent) instead of
/// the file provider.
pub fn static_config_with(extra_entry_point: &str, providers: &str) -> String {
    format!(
        r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: DEBUG
entryPoints:
  web:
    address: "{{{{addr:web}}}}"
{extra_entry_point}
providers:
  providersThrottleDuration: 100ms
{providers}"#
    )
}

/// One router `all` (`PathPrefix(`/`)`) to the service `echo`, on the server `{{echo}}`.
pub const ONE_ROUTE: &str = concat!(
    r#"
http:
  routers:
    all:
      rule: "PathPrefix(`/`)"
      service: echo
"#,
    echo_service!()
);

/// The service `echo` on the server `{{echo}}`, as the end of an `http:` section.
pub const ECHO_SERVICE: &str = echo_service!();

/// One router for `api.test` on `web` to the service `echo`, on the server `{{echo}}`.
pub fn api_route() -> String {
    let router =
        "    api:\n      rule: \"Host(`api.test`)\"\n      entryPoints: [web]\n      service: echo";
    routed_to(router, &["echo"])
}

/// Load balancers to write under `http.services:`, one per name, each on the server `{{name}}`.
pub fn load_balancers(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            format!("    {name}:\n      loadBalancer:\n        servers:\n          - url: \"{{{{{name}}}}}\"\n")
        })
        .collect()
}

/// `http:` with `routers` (the YAML under `routers:`) and the [`load_balancers`] `services`.
pub fn routed_to(routers: &str, services: &[&str]) -> String {
    format!(
        "http:\n  routers:\n{}\n  services:\n{}",
        routers.trim_matches('\n'),
        load_balancers(services)
    )
}

/// The template variables naming each backend's URL after the backend.
pub fn backend_vars<'a>(backends: &[&'a EchoBackend]) -> Vec<(&'a str, String)> {
    backends.iter().map(|b| (b.name(), b.url())).collect()
}

/// Starts the proxy with `routers` to a load balancer per backend, named after it (see
/// [`routed_to`]).
pub async fn start_routed(routers: &str, backends: &[&EchoBackend]) -> ProxyUnderTest {
    let names: Vec<&str> = backends.iter().map(|b| b.name()).collect();
    start(&routed_to(routers, &names), &backend_vars(backends)).await
}

/// [`static_config`] with a second entry point, `traefik` (API, metrics, ping), and `extra`
/// (top-level YAML) at the end.
pub fn static_config_with_traefik(extra: &str) -> String {
    format!("{}{extra}", static_config(TRAEFIK_ENTRY_POINT))
}

/// The entry point `traefik`, as YAML under `entryPoints:`.
pub const TRAEFIK_ENTRY_POINT: &str = "  traefik:\n    address: \"{{addr:traefik}}\"";

/// Starts the proxy with `dynamic`, whose `{{echo}}` is `echo`'s URL, and waits until GET `/`
/// with `host` reaches `echo`.
pub async fn start_echo(
    dynamic: &str,
    echo: &EchoBackend,
    host: &str,
) -> (ProxyUnderTest, HttpClient) {
    let proxy = start(dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, host, "/", echo.name()).await;
    (proxy, client)
}

/// Starts the proxy under test with the standard static configuration.
pub async fn start(dynamic: &str, vars: &[(&str, String)]) -> ProxyUnderTest {
    start_with(&static_config(""), dynamic, vars).await
}

pub async fn start_with(
    static_yaml: &str,
    dynamic: &str,
    vars: &[(&str, String)],
) -> ProxyUnderTest {
    let mut launch = viaduct_testkit::Launch::new(kind())
        .static_yaml(static_yaml)
        .dynamic_yaml(dynamic);
    for (name, value) in vars {
        launch = launch.var(name, value.clone());
    }
    match launch.start().await {
        Ok(proxy) => proxy,
        Err(e) => panic!("starting the proxy failed: {e}"),
    }
}

/// Polls `spec` through `client` until the answer satisfies `ready` (bounded), and returns it.
pub async fn wait_reply(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    spec: RequestSpec,
    ready: impl Fn(&Reply) -> bool,
) -> Reply {
    let result = proxy
        .wait_for(
            &format!("{} {} to be routed", spec.method, spec.url),
            ROUTING_TIMEOUT,
            || {
                let spec = spec.clone();
                let ready = &ready;
                async move {
                    match client.send(spec).await {
                        Ok(reply) if ready(&reply) => Ok(Some(reply)),
                        Ok(reply) => Err(format!(
                            "status {} backend {:?}",
                            reply.status,
                            reply.backend()
                        )),
                        Err(e) => Err(e.to_string()),
                    }
                }
            },
        )
        .await;
    match result {
        Ok(reply) => reply,
        Err(e) => panic!("{e}"),
    }
}

/// Waits until GET `path` with `host` is answered by `backend`.
pub async fn wait_backend(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    host: &str,
    path: &str,
    backend: &str,
) -> Reply {
    let spec = RequestSpec::get(&format!("{}{path}", proxy.url("web"))).header("host", host);
    wait_reply(proxy, client, spec, |r| r.backend() == Some(backend)).await
}

/// Sends GET `path` with `host` once; the echo backend's report of what it received.
pub async fn echoed(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    host: &str,
    path: &str,
) -> viaduct_testkit::EchoReport {
    let reply = get(proxy, client, host, path).await;
    match reply.echo() {
        Ok(report) => report,
        Err(e) => panic!("GET {path} (Host {host}) was not answered by an echo backend: {e}"),
    }
}

/// Sends GET `path` with `host` once.
pub async fn get(proxy: &ProxyUnderTest, client: &HttpClient, host: &str, path: &str) -> Reply {
    let url = format!("{}{path}", proxy.url("web"));
    match client.get_host(&url, host).await {
        Ok(reply) => reply,
        Err(e) => panic!("GET {url} (Host {host}) failed: {e}"),
    }
}

/// Runs `viaduct check` on `static_yaml` (no dynamic file content) to its exit: whether it
/// succeeded, and everything it printed.
pub async fn run_check(static_yaml: &str) -> (bool, String) {
    let proxy = viaduct_testkit::Launch::new(kind())
        .arg("check")
        .static_yaml(static_yaml)
        .dynamic_yaml("")
        .spawn_only()
        .unwrap_or_else(|e| panic!("starting viaduct check: {e}"));
    let status = proxy
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e}\nlogs:\n{}", proxy.logs()));
    (status.success(), proxy.logs())
}
