//! The Kubernetes objects the provider reads, as the API server serialises them. Every field
//! is optional on the wire, so everything defaults; unknown fields are ignored (the API adds
//! fields over versions).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `metadata` of any object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub resource_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// `networking.k8s.io/v1` Ingress.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Ingress {
    pub metadata: ObjectMeta,
    pub spec: IngressSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressSpec {
    pub ingress_class_name: Option<String>,
    pub default_backend: Option<IngressBackend>,
    pub tls: Vec<IngressTls>,
    pub rules: Vec<IngressRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressTls {
    pub hosts: Vec<String>,
    pub secret_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressRule {
    pub host: String,
    pub http: Option<HttpIngressRuleValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpIngressRuleValue {
    pub paths: Vec<HttpIngressPath>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpIngressPath {
    pub path: String,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (also when absent).
    pub path_type: Option<String>,
    pub backend: IngressBackend,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressBackend {
    /// Absent when the backend is a `resource` (not supported, as in Traefik).
    pub service: Option<IngressServiceBackend>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressServiceBackend {
    pub name: String,
    pub port: ServiceBackendPort,
}

/// A port by number or by name (one of them is set).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceBackendPort {
    pub name: String,
    pub number: i32,
}

/// `networking.k8s.io/v1` IngressClass.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressClass {
    pub metadata: ObjectMeta,
    pub spec: IngressClassSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IngressClassSpec {
    pub controller: String,
}

/// `v1` Service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    pub metadata: ObjectMeta,
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceSpec {
    /// `ClusterIP` (also when absent), `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(rename = "type")]
    pub kind: String,
    pub external_name: String,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    pub name: String,
    pub port: i32,
}

/// `discovery.k8s.io/v1` EndpointSlice; its service is the `kubernetes.io/service-name` label.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointSlice {
    pub metadata: ObjectMeta,
    pub address_type: String,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    pub addresses: Vec<String>,
    pub conditions: EndpointConditions,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointConditions {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointPort {
    pub name: Option<String>,
    pub port: Option<i32>,
}

/// `v1` Secret; `data` values are base64 as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    pub metadata: ObjectMeta,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: BTreeMap<String, String>,
}

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What the provider knows of the cluster: every watched object, by `(namespace, name)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    pub ingresses: BTreeMap<(String, String), Ingress>,
    pub ingress_classes: BTreeMap<(String, String), IngressClass>,
    pub services: BTreeMap<(String, String), Service>,
    pub endpoint_slices: BTreeMap<(String, String), EndpointSlice>,
    pub secrets: BTreeMap<(String, String), Secret>,
}

impl Cluster {
    /// Builds a cluster from objects of any kind (their `kind` field says which); objects of
    /// other kinds are ignored. Used with recorded API responses.
    pub fn from_objects(objects: &[serde_json::Value]) -> Result<Cluster, serde_json::Error> {
        let mut cluster = Cluster::default();
        for object in objects {
            let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            if let Some(resource) = Resource::from_kind(kind) {
                cluster.upsert(resource, object.clone())?;
            }
        }
        Ok(cluster)
    }

    /// Stores (or replaces) one object of `resource`.
    pub fn upsert(
        &mut self,
        resource: Resource,
        object: serde_json::Value,
    ) -> Result<(), serde_json::Error> {
        fn put<T: for<'de> Deserialize<'de>>(
            map: &mut BTreeMap<(String, String), T>,
            object: serde_json::Value,
            meta: fn(&T) -> &ObjectMeta,
        ) -> Result<(), serde_json::Error> {
            let value: T = serde_json::from_value(object)?;
            let m = meta(&value);
            map.insert((m.namespace.clone(), m.name.clone()), value);
            Ok(())
        }
        match resource {
            Resource::Ingresses => put(&mut self.ingresses, object, |o| &o.metadata),
            Resource::IngressClasses => put(&mut self.ingress_classes, object, |o| &o.metadata),
            Resource::Services => put(&mut self.services, object, |o| &o.metadata),
            Resource::EndpointSlices => put(&mut self.endpoint_slices, object, |o| &o.metadata),
            Resource::Secrets => put(&mut self.secrets, object, |o| &o.metadata),
        }
    }

    /// Forgets one object of `resource`.
    pub fn remove(&mut self, resource: Resource, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        match resource {
            Resource::Ingresses => drop(self.ingresses.remove(&key)),
            Resource::IngressClasses => drop(self.ingress_classes.remove(&key)),
            Resource::Services => drop(self.services.remove(&key)),
            Resource::EndpointSlices => drop(self.endpoint_slices.remove(&key)),
            Resource::Secrets => drop(self.secrets.remove(&key)),
        }
    }

    /// Forgets every object of `resource` in `namespace` (`None`: in every namespace), before
    /// a fresh list replaces them.
    pub fn clear(&mut self, resource: Resource, namespace: Option<&str>) {
        fn keep<T>(map: &mut BTreeMap<(String, String), T>, namespace: Option<&str>) {
            map.retain(|(ns, _), _| namespace.is_some_and(|wanted| wanted != ns));
        }
        match resource {
            Resource::Ingresses => keep(&mut self.ingresses, namespace),
            Resource::IngressClasses => keep(&mut self.ingress_classes, namespace),
            Resource::Services => keep(&mut self.services, namespace),
            Resource::EndpointSlices => keep(&mut self.endpoint_slices, namespace),
            Resource::Secrets => keep(&mut self.secrets, namespace),
        }
    }
}

/// A kind of object the provider watches, and where the API serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Ingresses,
    IngressClasses,
    Services,
    EndpointSlices,
    Secrets,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Ingresses,
        Resource::IngressClasses,
        Resource::Services,
        Resource::EndpointSlices,
        Resource::Secrets,
    ];

    /// The API path prefix (`/api/v1`, `/apis/<group>/<version>`) and the plural name.
    pub fn api(self) -> (&'static str, &'static str) {
        match self {
            Resource::Ingresses => ("/apis/networking.k8s.io/v1", "ingresses"),
            Resource::IngressClasses => ("/apis/networking.k8s.io/v1", "ingressclasses"),
            Resource::Services => ("/api/v1", "services"),
            Resource::EndpointSlices => ("/apis/discovery.k8s.io/v1", "endpointslices"),
            Resource::Secrets => ("/api/v1", "secrets"),
        }
    }

    /// Cluster-scoped kinds are listed once, not per namespace.
    pub fn is_cluster_scoped(self) -> bool {
        self == Resource::IngressClasses
    }

    /// The collection's path: `/apis/networking.k8s.io/v1/namespaces/ns/ingresses`.
    pub fn path(self, namespace: Option<&str>) -> String {
        let (prefix, plural) = self.api();
        match namespace {
            Some(ns) if !self.is_cluster_scoped() => format!("{prefix}/namespaces/{ns}/{plural}"),
            _ => format!("{prefix}/{plural}"),
        }
    }

    fn from_kind(kind: &str) -> Option<Resource> {
        match kind {
            "Ingress" => Some(Resource::Ingresses),
            "IngressClass" => Some(Resource::IngressClasses),
            "Service" => Some(Resource::Services),
            "EndpointSlice" => Some(Resource::EndpointSlices),
            "Secret" => Some(Resource::Secrets),
            _ => None,
        }
    }
}
