//! `providers`: the throttle, precedence, and one block per provider.
//!
//! The file, Docker, HTTP, Redis and Kubernetes Ingress providers are built. Other provider blocks are kept as option trees so real configurations load (and are reported by
//! [`super::StaticConfig::unsupported_keys`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::GoDuration;

/// Options of a provider Viaduct does not build yet, kept untyped.
pub type ProviderOptions = serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Providers {
    pub providers_throttle_duration: GoDuration,
    pub file: Option<FileProvider>,
    /// Provider names in decreasing precedence when names collide (3.7).
    pub precedence: Vec<String>,
    pub plugin: BTreeMap<String, ProviderOptions>,
    pub docker: Option<DockerProvider>,
    pub swarm: Option<ProviderOptions>,
    #[serde(rename = "kubernetesCRD")]
    pub kubernetes_crd: Option<ProviderOptions>,
    pub kubernetes_ingress: Option<KubernetesIngressProvider>,
    #[serde(rename = "kubernetesIngressNGINX")]
    pub kubernetes_ingress_nginx: Option<ProviderOptions>,
    pub kubernetes_gateway: Option<ProviderOptions>,
    pub knative: Option<ProviderOptions>,
    pub consul_catalog: Option<ProviderOptions>,
    pub nomad: Option<ProviderOptions>,
    pub ecs: Option<ProviderOptions>,
    pub http: Option<HttpProvider>,
    pub rest: Option<RestProvider>,
    pub consul: Option<ConsulProvider>,
    pub etcd: Option<EtcdProvider>,
    pub redis: Option<RedisProvider>,
    pub zoo_keeper: Option<ProviderOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FileProvider {
    pub filename: Option<String>,
    pub directory: Option<String>,
    pub watch: bool,
    pub debug_log_generated_template: bool,
}

/// `providers.http`: dynamic configuration polled from an HTTP(S) endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HttpProvider {
    pub endpoint: String,
    pub poll_interval: GoDuration,
    pub poll_timeout: GoDuration,
    pub headers: BTreeMap<String, String>,
    pub tls: Option<ClientTls>,
    /// Bytes; negative means no limit.
    pub max_response_body_size: i64,
}

/// `providers.kubernetesIngress`: routers and services from `networking.k8s.io/v1` Ingresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubernetesIngressProvider {
    /// The API server's URL; empty means in-cluster (or `http://localhost:8080` outside).
    pub endpoint: String,
    /// Bearer token; empty in-cluster means the service account's.
    pub token: String,
    pub cert_auth_file_path: String,
    /// Namespaces watched; empty means all.
    pub namespaces: Vec<String>,
    /// Ingress label selector (Kubernetes syntax), passed to the API server.
    pub label_selector: String,
    /// IngressClass name (or legacy `kubernetes.io/ingress.class` value) to serve.
    pub ingress_class: String,
    /// Ingress status publication; not built (reported as unsupported).
    pub ingress_endpoint: Option<IngressEndpoint>,
    pub throttle_duration: GoDuration,
    pub allow_empty_services: bool,
    pub allow_external_name_services: bool,
    /// Do not read IngressClasses (cluster-scoped); `ingressClassName` then matches `ingressClass`.
    pub disable_ingress_class_lookup: bool,
    pub disable_cluster_scope_resources: bool,
    /// Not built (reported as unsupported).
    #[serde(rename = "nativeLBByDefault")]
    pub native_lb_by_default: bool,
    /// Not built (reported as unsupported).
    pub strict_prefix_matching: bool,
    /// Not built (reported as unsupported).
    #[serde(rename = "reportNodeInternalIPs")]
    pub report_node_internal_ips: bool,
}

/// `providers.kubernetesIngress.ingressEndpoint`, parsed so Traefik configurations load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct IngressEndpoint {
    pub ip: String,
    pub hostname: String,
    pub published_service: String,
}

/// `providers.redis`: dynamic configuration read from Redis keys under `rootKey`, watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RedisProvider {
    /// `host:port`, tried in order.
    pub endpoints: Vec<String>,
    pub root_key: String,
    pub username: String,
    pub password: String,
    pub db: i64,
    /// TLS to Redis; not built (reported as unsupported).
    pub tls: Option<ClientTls>,
    /// Redis Sentinel discovery; not built (reported as unsupported).
    pub sentinel: Option<RedisSentinel>,
}

/// `providers.etcd`: dynamic configuration read from etcd keys under `rootKey`, watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EtcdProvider {
    /// `host:port` (or `http(s)://host:port`), tried in order.
    pub endpoints: Vec<String>,
    pub root_key: String,
    pub username: String,
    pub password: String,
    /// TLS to etcd (`ca`, `cert`, `key`, `insecureSkipVerify`).
    pub tls: Option<ClientTls>,
}

/// `providers.consul`: dynamic configuration read from Consul KV keys under `rootKey`, watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConsulProvider {
    /// `host:port` (or `http(s)://host:port`), tried in order.
    pub endpoints: Vec<String>,
    pub root_key: String,
    /// ACL token (`X-Consul-Token`).
    pub token: String,
    /// HTTP basic authentication.
    pub username: String,
    pub password: String,
    /// Consul Enterprise namespaces; not built (reported as unsupported).
    pub namespace: String,
    pub namespaces: Vec<String>,
    pub tls: Option<ClientTls>,
}

/// `providers.redis.sentinel`, parsed so Traefik configurations load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RedisSentinel {
    pub master_name: String,
    pub username: String,
    pub password: String,
    pub latency_strategy: bool,
    pub random_strategy: bool,
    pub replica_strategy: bool,
    pub use_disconnected_replicas: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DockerProvider {
    pub endpoint: String,
    /// Basic authentication to the endpoint; not built (reported as unsupported).
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<ClientTls>,
    #[serde(rename = "useBindPortIP")]
    pub use_bind_port_ip: bool,
    pub exposed_by_default: bool,
    pub network: Option<String>,
    pub default_rule: String,
    pub http_client_timeout: GoDuration,
    pub watch: bool,
    pub constraints: Option<String>,
    pub allow_empty_services: bool,
}

/// A provider's TLS client settings for its endpoint (`providers.docker.tls`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClientTls {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RestProvider {
    /// Serve the REST endpoint on the `traefik` entry point.
    pub insecure: bool,
}

impl Default for Providers {
    fn default() -> Self {
        Providers {
            providers_throttle_duration: GoDuration::from_secs(2),
            file: None,
            precedence: Vec::new(),
            plugin: BTreeMap::new(),
            docker: None,
            swarm: None,
            kubernetes_crd: None,
            kubernetes_ingress: None,
            kubernetes_ingress_nginx: None,
            kubernetes_gateway: None,
            knative: None,
            consul_catalog: None,
            nomad: None,
            ecs: None,
            http: None,
            rest: None,
            consul: None,
            etcd: None,
            redis: None,
            zoo_keeper: None,
        }
    }
}

impl Default for FileProvider {
    fn default() -> Self {
        FileProvider {
            filename: None,
            directory: None,
            watch: true,
            debug_log_generated_template: false,
        }
    }
}

impl Default for HttpProvider {
    fn default() -> Self {
        HttpProvider {
            endpoint: String::new(),
            poll_interval: GoDuration::from_secs(5),
            poll_timeout: GoDuration::from_secs(5),
            headers: BTreeMap::new(),
            tls: None,
            max_response_body_size: -1,
        }
    }
}

impl Default for RedisProvider {
    fn default() -> Self {
        RedisProvider {
            endpoints: vec!["127.0.0.1:6379".into()],
            root_key: "traefik".into(),
            username: String::new(),
            password: String::new(),
            db: 0,
            tls: None,
            sentinel: None,
        }
    }
}

impl Default for ConsulProvider {
    fn default() -> Self {
        ConsulProvider {
            endpoints: vec!["127.0.0.1:8500".into()],
            root_key: "traefik".into(),
            token: String::new(),
            username: String::new(),
            password: String::new(),
            namespace: String::new(),
            namespaces: Vec::new(),
            tls: None,
        }
    }
}

impl Default for EtcdProvider {
    fn default() -> Self {
        EtcdProvider {
            endpoints: vec!["127.0.0.1:2379".into()],
            root_key: "traefik".into(),
            username: String::new(),
            password: String::new(),
            tls: None,
        }
    }
}

impl Default for DockerProvider {
    fn default() -> Self {
        DockerProvider {
            endpoint: "unix:///var/run/docker.sock".into(),
            username: None,
            password: None,
            tls: None,
            use_bind_port_ip: false,
            exposed_by_default: true,
            network: None,
            default_rule: "Host(`{{ normalize .Name }}`)".into(),
            http_client_timeout: GoDuration::ZERO,
            watch: true,
            constraints: None,
            allow_empty_services: false,
        }
    }
}

impl Providers {
    /// `(key, set)` for every provider block, by its Traefik key.
    pub(crate) fn provider_blocks(&self) -> [(&'static str, bool); 18] {
        [
            ("file", self.file.is_some()),
            ("docker", self.docker.is_some()),
            ("swarm", self.swarm.is_some()),
            ("kubernetesCRD", self.kubernetes_crd.is_some()),
            ("kubernetesIngress", self.kubernetes_ingress.is_some()),
            (
                "kubernetesIngressNGINX",
                self.kubernetes_ingress_nginx.is_some(),
            ),
            ("kubernetesGateway", self.kubernetes_gateway.is_some()),
            ("knative", self.knative.is_some()),
            ("consulCatalog", self.consul_catalog.is_some()),
            ("nomad", self.nomad.is_some()),
            ("ecs", self.ecs.is_some()),
            ("http", self.http.is_some()),
            ("rest", self.rest.is_some()),
            ("consul", self.consul.is_some()),
            ("etcd", self.etcd.is_some()),
            ("redis", self.redis.is_some()),
            ("zooKeeper", self.zoo_keeper.is_some()),
            ("plugin", !self.plugin.is_empty()),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{parse_document, Format, Origin, StaticConfig};

    fn parse(text: &str) -> StaticConfig {
        parse_document(text, Format::Yaml, Origin::Inline("t")).unwrap()
    }

    #[test]
    fn redis_defaults_are_traefiks_and_only_tls_and_sentinel_are_unbuilt() {
        let config = parse("providers:\n  redis: {}\n");
        let redis = config.providers.redis.clone().unwrap();
        assert_eq!(redis.endpoints, ["127.0.0.1:6379"]);
        assert_eq!(redis.root_key, "traefik");
        assert_eq!(redis.db, 0);
        assert!(config.unsupported_keys().is_empty());

        let config = parse(
            "providers:\n  redis:\n    endpoints: [\"10.0.0.1:6380\"]\n    rootKey: edge\n    \
             username: u\n    password: p\n    db: 3\n    tls: {insecureSkipVerify: true}\n    \
             sentinel: {masterName: m, latencyStrategy: true}\n",
        );
        let redis = config.providers.redis.clone().unwrap();
        assert_eq!(
            (redis.root_key.as_str(), redis.db, redis.username.as_str()),
            ("edge", 3, "u")
        );
        assert_eq!(redis.sentinel.unwrap().master_name, "m");
        assert_eq!(
            config.unsupported_keys(),
            ["providers.redis.tls", "providers.redis.sentinel"]
        );
        assert!(parse_document::<StaticConfig>(
            "providers:\n  redis:\n    nosuch: 1\n",
            Format::Yaml,
            Origin::Inline("t")
        )
        .is_err());
    }

    #[test]
    fn kubernetes_ingress_is_typed_and_only_its_unbuilt_options_are_reported() {
        let config = parse(
            "providers:\n  kubernetesIngress:\n    endpoint: \"https://10.0.0.1:6443\"\n    \
             namespaces: [apps]\n    labelSelector: \"app=web\"\n    ingressClass: traefik\n    \
             throttleDuration: 2s\n    allowExternalNameServices: true\n",
        );
        let ingress = config.providers.kubernetes_ingress.clone().unwrap();
        assert_eq!(ingress.endpoint, "https://10.0.0.1:6443");
        assert_eq!(ingress.namespaces, ["apps"]);
        assert_eq!(ingress.throttle_duration, crate::GoDuration::from_secs(2));
        assert!(ingress.allow_external_name_services);
        assert!(config.unsupported_keys().is_empty());

        let config = parse(
            "providers:\n  kubernetesIngress:\n    ingressEndpoint: {ip: 1.2.3.4}\n    \
             nativeLBByDefault: true\n    strictPrefixMatching: true\n",
        );
        assert_eq!(
            config.unsupported_keys(),
            [
                "providers.kubernetesIngress.ingressEndpoint",
                "providers.kubernetesIngress.nativeLBByDefault",
                "providers.kubernetesIngress.strictPrefixMatching"
            ]
        );
        assert!(parse_document::<StaticConfig>(
            "providers:\n  kubernetesIngress:\n    nosuch: 1\n",
            Format::Yaml,
            Origin::Inline("t")
        )
        .is_err());
    }
}
