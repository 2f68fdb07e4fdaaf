//! The provider's tasks: one list-and-watch loop per collection, and one loop that rebuilds
//! and sends the configuration when the cluster changed (at most once per `throttleDuration`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use viaduct_config::static_config;
use viaduct_config::DynamicConfig;
use viaduct_providers::ProviderMessage;

use crate::client::{ClientOptions, KubeClient, KubeError, WatchEvent};
use crate::model::{Cluster, ObjectMeta, Resource};
use crate::translate::{translate, TranslateOptions};

/// The name the provider's objects are qualified with (`name@kubernetes`).
pub const KUBERNETES_PROVIDER_NAME: &str = "kubernetes";

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A watch ending sooner than this without an event is treated as broken.
const QUICK_END: Duration = Duration::from_secs(1);

/// Watches the cluster and sends its Ingress configuration.
#[derive(Debug)]
pub struct KubernetesIngressProvider {
    client: KubeClient,
    /// `None`: every namespace.
    namespaces: Vec<Option<String>>,
    label_selector: String,
    throttle: Duration,
    translate: TranslateOptions,
}

impl KubernetesIngressProvider {
    /// Checks the options and builds the client (the CA and token files are read here).
    pub fn new(options: &static_config::KubernetesIngressProvider) -> Result<Self, KubeError> {
        let client = KubeClient::from_options(&ClientOptions {
            endpoint: options.endpoint.clone(),
            token: options.token.clone(),
            cert_auth_file_path: options.cert_auth_file_path.clone(),
        })?;
        check_label_selector(&options.label_selector)?;
        if std::env::var_os("KUBECONFIG").is_some() {
            tracing::warn!(
                provider = KUBERNETES_PROVIDER_NAME,
                "KUBECONFIG is not read; the endpoint, token and certAuthFilePath options are used"
            );
        }
        let mut namespaces: Vec<Option<String>> = options
            .namespaces
            .iter()
            .filter(|ns| !ns.is_empty())
            .map(|ns| Some(ns.clone()))
            .collect();
        if namespaces.is_empty() {
            namespaces.push(None);
        }
        Ok(KubernetesIngressProvider {
            client,
            namespaces,
            label_selector: options.label_selector.clone(),
            throttle: options
                .throttle_duration
                .positive()
                .unwrap_or(Duration::ZERO),
            translate: TranslateOptions {
                ingress_class: options.ingress_class.clone(),
                allow_empty_services: options.allow_empty_services,
                allow_external_name_services: options.allow_external_name_services,
                no_ingress_class_lookup: options.disable_ingress_class_lookup
                    || options.disable_cluster_scope_resources,
            },
        })
    }

    /// Runs until `tx` closes.
    pub async fn run(self, tx: mpsc::Sender<ProviderMessage>) {
        if self.translate.allow_external_name_services {
            tracing::warn!(
                provider = KUBERNETES_PROVIDER_NAME,
                "ExternalName services are allowed (allowExternalNameServices)"
            );
        }
        let cluster = Arc::new(Mutex::new(Cluster::default()));
        // Capacity 1: changes during a rebuild (or the throttle) coalesce into one more.
        let (changed_tx, mut changed_rx) = mpsc::channel::<()>(1);
        let synced = Arc::new(AtomicUsize::new(0));
        let mut watchers = JoinSet::new();
        for (resource, namespace) in self.collections() {
            let watcher = Watcher {
                client: self.client.clone(),
                resource,
                namespace,
                label_selector: (resource == Resource::Ingresses)
                    .then(|| self.label_selector.clone())
                    .filter(|s| !s.is_empty()),
                cluster: cluster.clone(),
                changed: changed_tx.clone(),
                synced: synced.clone(),
            };
            watchers.spawn(watcher.run());
        }
        let watcher_count = watchers.len();
        drop(changed_tx);

        let mut last_sent: Option<DynamicConfig> = None;
        let mut last_problems: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                changed = changed_rx.recv() => if changed.is_none() { return },
                () = tx.closed() => return,
            }
            // Nothing is sent before every collection was listed once: a partial view would
            // drop routers whose Service is simply not read yet.
            if synced.load(Ordering::Acquire) < watcher_count {
                continue;
            }
            let translation = match cluster.lock() {
                Ok(cluster) => translate(&cluster, &self.translate),
                Err(_) => return,
            };
            if translation.problems != last_problems {
                for problem in &translation.problems {
                    tracing::error!(provider = KUBERNETES_PROVIDER_NAME, "{problem}");
                }
                last_problems = translation.problems;
            }
            if last_sent.as_ref() != Some(&translation.config) {
                last_sent = Some(translation.config.clone());
                let message = ProviderMessage {
                    provider: KUBERNETES_PROVIDER_NAME.into(),
                    config: Arc::new(translation.config),
                };
                if tx.send(message).await.is_err() {
                    return;
                }
            }
            if !self.throttle.is_zero() {
                tokio::time::sleep(self.throttle).await;
            }
        }
    }

    /// Every `(kind, namespace)` collection to watch.
    fn collections(&self) -> Vec<(Resource, Option<String>)> {
        let mut collections = Vec::new();
        for resource in Resource::ALL {
            if resource.is_cluster_scoped() {
                if !self.translate.no_ingress_class_lookup {
                    collections.push((resource, None));
                }
                continue;
            }
            for namespace in &self.namespaces {
                collections.push((resource, namespace.clone()));
            }
        }
        collections
    }
}

/// One collection's list-and-watch loop.
struct Watcher {
    client: KubeClient,
    resource: Resource,
    namespace: Option<String>,
    label_selector: Option<String>,
    cluster: Arc<Mutex<Cluster>>,
    changed: mpsc::Sender<()>,
    synced: Arc<AtomicUsize>,
}

impl Watcher {
    async fn run(self) {
        let path = self.resource.path(self.namespace.as_deref());
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(selector) = &self.label_selector {
            query.push(("labelSelector", selector.as_str()));
        }
        let mut backoff = MIN_BACKOFF;
        let mut listed_once = false;
        loop {
            if self.changed.is_closed() {
                return;
            }
            let list = match self.client.list(&path, &query).await {
                Ok(list) => list,
                Err(e) => {
                    if matches!(&e, KubeError::Status { status, .. } if *status == http::StatusCode::NOT_FOUND)
                        && !listed_once
                    {
                        // The kind is not served (yet): an empty collection until it is.
                        listed_once = true;
                        self.synced.fetch_add(1, Ordering::AcqRel);
                        self.notify();
                    }
                    tracing::warn!(provider = KUBERNETES_PROVIDER_NAME, error = %e, retry_in = ?backoff, "cannot list; the last known objects stay");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            {
                let Ok(mut cluster) = self.cluster.lock() else {
                    return;
                };
                cluster.clear(self.resource, self.namespace.as_deref());
                for item in list.items {
                    if let Err(e) = cluster.upsert(self.resource, item) {
                        tracing::warn!(provider = KUBERNETES_PROVIDER_NAME, path = %path, error = %e, "an object does not decode; ignored");
                    }
                }
            }
            if !listed_once {
                listed_once = true;
                self.synced.fetch_add(1, Ordering::AcqRel);
            }
            self.notify();
            let mut version = list.resource_version;
            match self.watch(&path, &query, &mut version, &mut backoff).await {
                WatchEnd::Relist => {}
                WatchEnd::Closed => return,
            }
        }
    }

    /// Watches from `version` (re-watching when the server ends a watch) until a new list is
    /// needed: a `410 Gone`, a broken stream or a failed request.
    async fn watch(
        &self,
        path: &str,
        query: &[(&str, &str)],
        version: &mut String,
        backoff: &mut Duration,
    ) -> WatchEnd {
        loop {
            let mut stream = match self.client.watch(path, query, version).await {
                Ok(stream) => stream,
                Err(KubeError::Gone { .. }) => return WatchEnd::Relist,
                Err(e) => {
                    tracing::warn!(provider = KUBERNETES_PROVIDER_NAME, error = %e, retry_in = ?*backoff, "cannot watch; listing again");
                    tokio::time::sleep(*backoff).await;
                    *backoff = (*backoff * 2).min(MAX_BACKOFF);
                    return WatchEnd::Relist;
                }
            };
            let started = Instant::now();
            let mut events = 0usize;
            loop {
                let event = match stream.next().await {
                    Ok(Some(event)) => event,
                    // The server's timeout: watch again from where we are.
                    Ok(None) if events > 0 || started.elapsed() >= QUICK_END => break,
                    // A watch that ends at once, empty, is not a timeout: back off and list
                    // again rather than spin.
                    Ok(None) => {
                        tokio::time::sleep(*backoff).await;
                        *backoff = (*backoff * 2).min(MAX_BACKOFF);
                        return WatchEnd::Relist;
                    }
                    Err(e) => {
                        tracing::warn!(provider = KUBERNETES_PROVIDER_NAME, error = %e, "the watch broke; listing again");
                        tokio::time::sleep(*backoff).await;
                        *backoff = (*backoff * 2).min(MAX_BACKOFF);
                        return WatchEnd::Relist;
                    }
                };
                *backoff = MIN_BACKOFF;
                events += 1;
                match event {
                    WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                        self.remember_version(&object, version);
                        let Ok(mut cluster) = self.cluster.lock() else {
                            return WatchEnd::Closed;
                        };
                        if let Err(e) = cluster.upsert(self.resource, object) {
                            tracing::warn!(provider = KUBERNETES_PROVIDER_NAME, path = %path, error = %e, "an object does not decode; ignored");
                        }
                    }
                    WatchEvent::Deleted(object) => {
                        self.remember_version(&object, version);
                        let meta = meta_of(&object);
                        let Ok(mut cluster) = self.cluster.lock() else {
                            return WatchEnd::Closed;
                        };
                        cluster.remove(self.resource, &meta.namespace, &meta.name);
                    }
                    WatchEvent::Bookmark(bookmark) => {
                        if !bookmark.is_empty() {
                            *version = bookmark;
                        }
                        continue;
                    }
                    WatchEvent::Error { code, message } => {
                        if code != 410 {
                            tracing::warn!(provider = KUBERNETES_PROVIDER_NAME, path = %path, code, message = %message, "the watch ended with an error; listing again");
                        }
                        return WatchEnd::Relist;
                    }
                }
                if !self.notify() {
                    return WatchEnd::Closed;
                }
            }
            if self.changed.is_closed() {
                return WatchEnd::Closed;
            }
        }
    }

    fn remember_version(&self, object: &serde_json::Value, version: &mut String) {
        let meta = meta_of(object);
        if !meta.resource_version.is_empty() {
            *version = meta.resource_version;
        }
    }

    /// Tells the rebuild loop; false once it is gone.
    fn notify(&self) -> bool {
        !matches!(
            self.changed.try_send(()),
            Err(mpsc::error::TrySendError::Closed(()))
        )
    }
}

enum WatchEnd {
    Relist,
    Closed,
}

fn meta_of(object: &serde_json::Value) -> ObjectMeta {
    object
        .get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default()
}

/// A light check of the selector's syntax (the API server has the last word).
fn check_label_selector(selector: &str) -> Result<(), KubeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./=!, ()".contains(c);
    if selector.chars().all(allowed) {
        Ok(())
    } else {
        Err(KubeError::Option {
            option: "labelSelector",
            reason: format!("{selector:?} is not a label selector"),
        })
    }
}
