//! `providers.kubernetesIngress`: routers and services from `networking.k8s.io/v1` Ingresses,
//! as Traefik's `kubernetes` provider builds them.
//!
//! Ingresses, IngressClasses, Services, EndpointSlices and Secrets are listed then watched
//! ([`client`]); every change rebuilds the configuration ([`translate`]), which is sent as
//! the `kubernetes` provider's when it differs from the last one sent. While the API is
//! unreachable, the last known objects (and so the last configuration) stay.

pub mod annotations;
pub mod client;
pub mod model;
mod provider;
pub mod translate;

pub use client::{ClientOptions, KubeClient, KubeError, ObjectList, WatchEvent, WatchStream};
pub use model::{Cluster, Resource};
pub use provider::{KubernetesIngressProvider, KUBERNETES_PROVIDER_NAME};
pub use translate::{translate, TranslateOptions, Translation};
