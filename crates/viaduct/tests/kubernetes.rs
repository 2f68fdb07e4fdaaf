//! `providers.kubernetesIngress` against kmock, a fake Kubernetes API with list and watch: a
//! Service, an EndpointSlice pointing at an echo backend on 127.0.0.1 and an Ingress route to
//! it; deleting the Ingress removes the route. The objects are posted in the shape a real API
//! server stores them.
//!
//! kmock ignores `resourceVersion` (every watch replays the objects as ADDED), which list-and-
//! watch clients tolerate.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::api::{api_get, body_json};
use common::{get, start_with, static_config_with, wait_backend, wait_reply};
use http::Method;
use viaduct_testkit::{EchoBackend, HttpClient, RequestBody, RequestSpec};

/// kmock's emulator with the collections the providers watch declared (an undeclared one
/// answers 404; Traefik also watches Nodes), served until killed. kmock streams watches as
/// `application/octet-stream`, which client-go (Traefik) refuses: a real API server says
/// `application/json`, and so does this shim.
const KMOCK_SCRIPT: &str = r#"
import asyncio, sys, aiohttp.web, kmock
prepare = aiohttp.web.StreamResponse.prepare
async def prepare_as_json(self, request):
    if self.content_type == "application/octet-stream":
        self.content_type = "application/json"
    return await prepare(self, request)
aiohttp.web.StreamResponse.prepare = prepare_as_json
async def main():
    async with kmock.KubernetesEmulator() as k, kmock.Server(k, host="127.0.0.1", port=int(sys.argv[1])):
        for resource in ["v1/services", "v1/secrets", "networking.k8s.io/v1/ingresses",
                         "networking.k8s.io/v1/ingressclasses", "discovery.k8s.io/v1/endpointslices",
                         "v1/nodes"]:
            k.resources[resource] = {}
        await asyncio.sleep(600)
asyncio.run(main())
"#;

fn kmock_python() -> std::path::PathBuf {
    std::env::var_os("KMOCK_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-kmock/bin/python")
        })
}

/// A kmock server on a free loopback port, stopped on drop.
struct FakeCluster {
    port: u16,
    child: Child,
    client: HttpClient,
}

/// client-go (Traefik) streams its initial list by default and waits for the bookmark that
/// ends it, which kmock does not send; a plain list it handles. The proxy inherits this
/// process's environment: set once, before any test of this binary spawns anything.
fn plain_lists_for_client_go() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("KUBE_FEATURE_WatchListClient", "false"));
}

impl FakeCluster {
    async fn start() -> Self {
        let port = viaduct_testkit::free_port().unwrap();
        let child = Command::new(kmock_python())
            .args(["-c", KMOCK_SCRIPT, &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("running kmock (set KMOCK_PYTHON to a python with kmock installed)");
        let cluster = FakeCluster {
            port,
            child,
            client: HttpClient::http1(),
        };
        let started = std::time::Instant::now();
        loop {
            let url = format!("{}/api/v1/services", cluster.url());
            if let Ok(reply) = cluster.client.send(RequestSpec::get(&url)).await {
                if reply.status == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "kmock did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cluster
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn send(&self, method: Method, path: &str, object: Option<serde_json::Value>) {
        let mut spec = RequestSpec::new(method.clone(), &format!("{}{path}", self.url()));
        if let Some(object) = object {
            spec = spec
                .header("content-type", "application/json")
                .body(RequestBody::Bytes(object.to_string().into()));
        }
        let reply = self.client.send(spec).await.unwrap();
        assert!(
            reply.status < 300,
            "{method} {path}: {} {}",
            reply.status,
            reply.text()
        );
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kmock"]
async fn an_ingress_routes_to_its_endpoints_until_it_is_deleted() {
    plain_lists_for_client_go();
    let echo = EchoBackend::start("k8s").await.unwrap();
    let cluster = FakeCluster::start().await;
    cluster.whoami(&echo).await;

    let providers = format!(
        "  kubernetesIngress:\n    endpoint: \"{}\"\n    throttleDuration: 100ms\n",
        cluster.url()
    );
    let proxy = start_with(&static_config_with("", &providers), "", &[]).await;
    let client = HttpClient::http1();

    cluster
        .send(
            Method::POST,
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            Some(serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "whoami", "namespace": "default",
                             "annotations": {"traefik.ingress.kubernetes.io/router.entrypoints": "web"}},
                "spec": {"rules": [{"host": "k8s.test", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "whoami", "port": {"number": 80}}}}]}}]}
            })),
        )
        .await;
    let reply = wait_backend(&proxy, &client, "k8s.test", "/hello", "k8s").await;
    assert_eq!(reply.echo().unwrap().uri, "/hello");

    cluster
        .send(
            Method::DELETE,
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses/whoami",
            None,
        )
        .await;
    let spec = RequestSpec::get(&format!("{}/hello", proxy.url("web"))).header("host", "k8s.test");
    wait_reply(&proxy, &client, spec, |r| r.status == 404).await;
}

/// Choices where Traefik's behaviour is subtle, checked against both proxies: Traefik's router
/// names, an Ingress `tls` section that does not make the router TLS-only, a class that names
/// no IngressClass, and Exact paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kmock"]
async fn names_tls_sections_classes_and_exact_paths_as_traefik() {
    plain_lists_for_client_go();
    let echo = EchoBackend::start("k8s").await.unwrap();
    let cluster = FakeCluster::start().await;
    cluster.whoami(&echo).await;
    let certificate = rcgen::generate_simple_self_signed(vec!["tls.test".to_string()]).unwrap();
    cluster
        .send(
            Method::POST,
            "/api/v1/namespaces/default/secrets",
            Some(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "tls-test", "namespace": "default"},
                "data": {"tls.crt": base64(&certificate.cert.pem()),
                         "tls.key": base64(&certificate.signing_key.serialize_pem())}
            })),
        )
        .await;
    let backend = serde_json::json!({"service": {"name": "whoami", "port": {"name": "web"}}});
    for (name, spec) in [
        (
            "with-tls",
            serde_json::json!({
            "tls": [{"hosts": ["tls.test"], "secretName": "tls-test"}],
            "rules": [{"host": "tls.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}),
        ),
        (
            "exact",
            serde_json::json!({
            "rules": [{"host": "exact.test", "http": {"paths": [
                {"path": "/only", "pathType": "Exact", "backend": backend}]}}]}),
        ),
        (
            "other-class",
            serde_json::json!({
            "ingressClassName": "nosuch",
            "rules": [{"host": "other.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}),
        ),
    ] {
        cluster
            .send(
                Method::POST,
                "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
                Some(serde_json::json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": spec
                })),
            )
            .await;
    }
    let providers = format!(
        "  kubernetesIngress:\n    endpoint: \"{}\"\n    throttleDuration: 100ms\n",
        cluster.url()
    );
    let static_yaml = format!(
        "{}api:\n  insecure: true\n",
        static_config_with(common::TRAEFIK_ENTRY_POINT, &providers)
    );
    let proxy = start_with(&static_yaml, "", &[]).await;
    let client = HttpClient::http1();

    // Plain HTTP still reaches the router of an Ingress with a `tls` section.
    wait_backend(&proxy, &client, "tls.test", "/", "k8s").await;
    wait_backend(&proxy, &client, "exact.test", "/only", "k8s").await;
    assert_eq!(
        get(&proxy, &client, "exact.test", "/only/more")
            .await
            .status,
        404
    );
    assert_eq!(get(&proxy, &client, "other.test", "/").await.status, 404);

    for router in ["default-with-tls-tls-test", "default-exact-exact-test-only"] {
        let reply = api_get(
            &proxy,
            &client,
            &format!("/api/http/routers/{router}@kubernetes"),
        )
        .await;
        assert_eq!(reply.status, 200, "router {router}: {}", reply.text());
        assert_eq!(
            body_json(&reply)["service"],
            "default-whoami-web",
            "router {router}"
        );
    }
    let reply = api_get(
        &proxy,
        &client,
        "/api/http/services/default-whoami-web@kubernetes",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl FakeCluster {
    /// The Service `whoami` (port `web` 80) and its EndpointSlice: `echo` on 127.0.0.1.
    async fn whoami(&self, echo: &EchoBackend) {
        self.send(
            Method::POST,
            "/api/v1/namespaces/default/services",
            Some(serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "whoami", "namespace": "default"},
                "spec": {"type": "ClusterIP", "selector": {"app": "whoami"},
                         "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": "web"}]}
            })),
        )
        .await;
        self
            .send(
                Method::POST,
                "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                Some(serde_json::json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "whoami-8fj2k", "namespace": "default",
                                 "labels": {"kubernetes.io/service-name": "whoami"}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": ["127.0.0.1"],
                                   "conditions": {"ready": true, "serving": true, "terminating": false}}],
                    "ports": [{"name": "web", "port": echo.addr().port(), "protocol": "TCP"}]
                })),
            )
            .await;
    }
}

/// A `defaultBackend` beside rules, an endpoint whose readiness is unknown, and a wildcard host
/// (one label), against both proxies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kmock"]
async fn default_backends_unknown_readiness_and_wildcards_as_traefik() {
    plain_lists_for_client_go();
    let echo = EchoBackend::start("k8s").await.unwrap();
    let unknown = EchoBackend::start("unknown").await.unwrap();
    let cluster = FakeCluster::start().await;
    cluster.whoami(&echo).await;
    cluster
        .send(
            Method::POST,
            "/api/v1/namespaces/default/services",
            Some(serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "unknown", "namespace": "default"},
                "spec": {"ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}
            })),
        )
        .await;
    cluster
        .send(
            Method::POST,
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            Some(serde_json::json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "unknown-1", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "unknown"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {}}],
                "ports": [{"name": "web", "port": unknown.addr().port(), "protocol": "TCP"}]
            })),
        )
        .await;
    let backend =
        |name: &str| serde_json::json!({"service": {"name": name, "port": {"number": 80}}});
    for (name, spec) in [
        (
            "fallback",
            serde_json::json!({
            "defaultBackend": backend("whoami"),
            "rules": [{"host": "rule.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("whoami")}]}}]}),
        ),
        (
            "unknown",
            serde_json::json!({
            "rules": [{"host": "unknown.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("unknown")}]}}]}),
        ),
        (
            "wild",
            serde_json::json!({
            "rules": [{"host": "*.wild.test", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("whoami")}]}}]}),
        ),
    ] {
        cluster
            .send(
                Method::POST,
                "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
                Some(serde_json::json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": spec
                })),
            )
            .await;
    }
    let providers = format!(
        "  kubernetesIngress:\n    endpoint: \"{}\"\n    throttleDuration: 100ms\n",
        cluster.url()
    );
    let proxy = start_with(&static_config_with("", &providers), "", &[]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "a.wild.test", "/", "k8s").await;
    wait_backend(&proxy, &client, "rule.test", "/", "k8s").await;
    let elsewhere = get(&proxy, &client, "elsewhere.test", "/").await;
    eprintln!(
        "DEFAULT BACKEND WITH RULES: {} {:?}",
        elsewhere.status,
        elsewhere.backend()
    );
    let unknown_reply = get(&proxy, &client, "unknown.test", "/").await;
    eprintln!(
        "UNKNOWN READINESS: {} {:?}",
        unknown_reply.status,
        unknown_reply.backend()
    );
    assert_eq!(get(&proxy, &client, "a.b.wild.test", "/").await.status, 404);
    assert_eq!(get(&proxy, &client, "wild.test", "/").await.status, 404);
}

/// `viaduct check` validates the provider's options: a CA file that does not exist or a bad
/// endpoint is an error; good options pass without reaching any cluster.
#[test]
fn check_validates_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let run = |providers: &str| {
        let path = dir.path().join("traefik.yml");
        std::fs::write(
            &path,
            format!("entryPoints:\n  web:\n    address: \"127.0.0.1:0\"\nproviders:\n{providers}"),
        )
        .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_viaduct"))
            .arg("check")
            .arg(format!("--configFile={}", path.display()))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (ok, text) = run(
        "  kubernetesIngress:\n    endpoint: \"https://127.0.0.1:6443\"\n    namespaces: [apps]\n    \
         labelSelector: \"app=web\"\n    throttleDuration: 2s\n",
    );
    assert!(ok, "{text}");
    let (ok, text) = run(
        "  kubernetesIngress:\n    endpoint: \"https://127.0.0.1:6443\"\n    certAuthFilePath: /nonexistent/ca.crt\n",
    );
    assert!(!ok, "{text}");
    assert!(text.contains("providers.kubernetesIngress"), "{text}");
    let (ok, text) = run("  kubernetesIngress:\n    endpoint: \"ftp://cluster\"\n");
    assert!(!ok, "{text}");
    let (ok, text) = run("  kubernetesIngress:\n    nosuch: 1\n");
    assert!(!ok, "{text}");
}

/// `ingressClass` and `disableIngressClassLookup`: with the lookup, an IngressClass whose
/// controller is Traefik's is required; without it, no Ingress naming a class is served, and
/// an Ingress without one only when `ingressClass` is empty. Against both proxies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kmock"]
async fn ingress_class_names_with_and_without_the_lookup_as_traefik() {
    plain_lists_for_client_go();
    let echo = EchoBackend::start("k8s").await.unwrap();
    let cluster = FakeCluster::start().await;
    cluster.whoami(&echo).await;
    cluster
        .send(
            Method::POST,
            "/apis/networking.k8s.io/v1/ingressclasses",
            Some(serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "edge"},
                "spec": {"controller": "traefik.io/ingress-controller"}
            })),
        )
        .await;
    let backend = serde_json::json!({"service": {"name": "whoami", "port": {"number": 80}}});
    for (name, class) in [("edge", "edge"), ("traefik", "traefik"), ("other", "other")] {
        cluster
            .send(
                Method::POST,
                "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
                Some(serde_json::json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"ingressClassName": class, "rules": [{"host": format!("{name}.test"),
                        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}
                })),
            )
            .await;
    }
    cluster
        .send(
            Method::POST,
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            Some(serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "plain", "namespace": "default"},
                "spec": {"rules": [{"host": "plain.test",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}
            })),
        )
        .await;
    let client = HttpClient::http1();
    for (options, served, refused) in [
        ("", "edge.test", vec!["traefik.test", "other.test"]),
        (
            "    disableIngressClassLookup: true\n",
            "plain.test",
            vec!["edge.test", "traefik.test", "other.test"],
        ),
        (
            "    disableClusterScopeResources: true\n    ingressClass: other\n",
            "",
            vec!["edge.test", "traefik.test", "other.test", "plain.test"],
        ),
    ] {
        let providers = format!(
            "  kubernetesIngress:\n    endpoint: \"{}\"\n    throttleDuration: 100ms\n{options}",
            cluster.url()
        );
        let proxy = start_with(&static_config_with("", &providers), "", &[]).await;
        if served.is_empty() {
            // Nothing to wait for: give the provider time to have sent its configuration.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        } else {
            wait_backend(&proxy, &client, served, "/", "k8s").await;
        }
        for host in refused {
            assert_eq!(
                get(&proxy, &client, host, "/").await.status,
                404,
                "{host} with {options:?}"
            );
        }
    }
}
