//! Talking to the Docker Engine: list and inspect the containers, build the configuration,
//! send it on every change; follow the events stream; reconnect with backoff when the
//! connection is lost, the last configuration serving meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::errors::Error as ApiError;
use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};
use viaduct_config::static_config::DockerProvider as DockerOptions;
use viaduct_config::DynamicConfig;
use viaduct_providers::ProviderMessage;

use crate::settings::request_timeout_secs;
use crate::{
    build_configuration, BuildSettings, Container, DockerError, Endpoint, DOCKER_PROVIDER_NAME,
};

/// Reads `providers.docker` from the engine and sends every change of the configuration.
#[derive(Debug, Clone)]
pub struct DockerProvider {
    endpoint: Endpoint,
    settings: BuildSettings,
    watch: bool,
    timeout_secs: u64,
}

/// First wait after a failed connection; doubled on each failure up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Events closer together than this are applied together.
const QUIET: Duration = Duration::from_millis(100);
/// A steady stream of events still refreshes at least this often.
const MAX_DEBOUNCE: Duration = Duration::from_millis(500);
/// Container events that change what the provider builds.
const ACTIONS: [&str; 9] = [
    "create", "start", "restart", "die", "stop", "kill", "pause", "unpause", "destroy",
];

/// Why a connection to the engine ended.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("the events stream ended")]
    StreamEnded,
}

/// What was last sent and logged, kept across reconnections.
#[derive(Debug, Default)]
struct Published {
    config: Option<Arc<DynamicConfig>>,
    errors: BTreeSet<String>,
}

impl DockerProvider {
    /// Checks the static options (endpoint, TLS files named, constraints, `defaultRule`).
    pub fn new(options: &DockerOptions) -> Result<DockerProvider, DockerError> {
        Ok(DockerProvider {
            endpoint: Endpoint::new(options)?,
            settings: BuildSettings::new(options)?,
            watch: options.watch,
            timeout_secs: request_timeout_secs(options),
        })
    }

    pub fn settings(&self) -> &BuildSettings {
        &self.settings
    }

    /// Sends the configuration once connected, then on every change while `watch` is on,
    /// until `tx` closes. A failed or lost connection is retried forever with backoff; the
    /// aggregator keeps the last configuration sent meanwhile.
    pub async fn run(mut self, tx: mpsc::Sender<ProviderMessage>) {
        self.settings.host_ip = host_ip().await;
        let mut published = Published::default();
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let outcome = tokio::select! {
                outcome = self.connection(&tx, &mut published, &mut backoff) => outcome,
                _ = tx.closed() => return,
            };
            let Err(error) = outcome else {
                return;
            };
            tracing::error!(
                provider = DOCKER_PROVIDER_NAME,
                endpoint = ?self.endpoint,
                error = %error,
                retry_in = ?backoff,
                "cannot read the Docker engine; the last configuration keeps serving"
            );
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = tx.closed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: a full read, then (when watching) a re-read after each burst of
    /// events. `Ok` only when not watching.
    async fn connection(
        &self,
        tx: &mpsc::Sender<ProviderMessage>,
        published: &mut Published,
        backoff: &mut Duration,
    ) -> Result<(), ConnectionError> {
        let docker = self.connect()?.negotiate_version().await?;
        tracing::info!(
            provider = DOCKER_PROVIDER_NAME,
            endpoint = ?self.endpoint,
            api_version = %docker.client_version(),
            "connected to the Docker engine"
        );
        // The stream starts when first polled, after the listing: asking for the events
        // since just before it means none in between is missed.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .saturating_sub(1);
        let mut events = Box::pin(docker.events(Some(EventsOptions {
            since: Some(since.to_string()),
            until: None,
            filters: Some(HashMap::from([(
                "type".to_owned(),
                vec!["container".to_owned()],
            )])),
        })));
        self.refresh(&docker, tx, published).await?;
        *backoff = INITIAL_BACKOFF;
        if !self.watch {
            return Ok(());
        }
        loop {
            next_relevant(&mut events).await?;
            let burst_end = Instant::now() + MAX_DEBOUNCE;
            while Instant::now() < burst_end {
                match timeout(QUIET, next_relevant(&mut events)).await {
                    Err(_quiet) => break,
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        // Apply what happened before the connection went.
                        self.refresh(&docker, tx, published).await.ok();
                        return Err(e);
                    }
                }
            }
            self.refresh(&docker, tx, published).await?;
        }
    }

    fn connect(&self) -> Result<Docker, ApiError> {
        match &self.endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(
                &path.to_string_lossy(),
                self.timeout_secs,
                API_DEFAULT_VERSION,
            ),
            Endpoint::Tcp { address, tls: None } => {
                Docker::connect_with_http(address, self.timeout_secs, API_DEFAULT_VERSION)
            }
            Endpoint::Tcp {
                address,
                tls: Some(files),
            } => {
                // The client configuration takes the process-wide provider; ring is the one
                // this build has. Already installed is fine.
                let _ = rustls::crypto::ring::default_provider().install_default();
                Docker::connect_with_ssl(
                    address,
                    &files.key,
                    &files.cert,
                    &files.ca,
                    self.timeout_secs,
                    API_DEFAULT_VERSION,
                )
            }
        }
    }

    /// Lists and inspects the containers, builds the configuration, logs new errors and sends
    /// the configuration if it changed.
    async fn refresh(
        &self,
        docker: &Docker,
        tx: &mpsc::Sender<ProviderMessage>,
        published: &mut Published,
    ) -> Result<(), ApiError> {
        let containers = read_containers(docker).await?;
        let (config, errors) = build_configuration(&containers, &self.settings);
        let errors: BTreeSet<String> = errors.iter().map(ToString::to_string).collect();
        for error in errors.difference(&published.errors) {
            tracing::error!(provider = DOCKER_PROVIDER_NAME, "{error}");
        }
        published.errors = errors;
        if published.config.as_deref() == Some(&config) {
            return Ok(());
        }
        let config = Arc::new(config);
        tracing::debug!(
            provider = DOCKER_PROVIDER_NAME,
            containers = containers.len(),
            "configuration changed"
        );
        published.config = Some(Arc::clone(&config));
        let message = ProviderMessage {
            provider: DOCKER_PROVIDER_NAME.to_owned(),
            config,
        };
        // A closed channel ends the provider through `tx.closed()`.
        tx.send(message).await.ok();
        Ok(())
    }
}

/// Every running container (and stopped ones that ask to be kept), inspected.
async fn read_containers(docker: &Docker) -> Result<Vec<Container>, ApiError> {
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await?;
    let mut containers = Vec::with_capacity(summaries.len());
    for summary in summaries {
        let running = summary.state.is_some_and(|s| s.to_string() == "running");
        let kept_stopped = summary.labels.as_ref().is_some_and(|labels| {
            labels.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("traefik.docker.allownonrunning")
                    && matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")
            })
        });
        let Some(id) = summary.id.filter(|_| running || kept_stopped) else {
            continue;
        };
        match docker.inspect_container(&id, None).await {
            Ok(inspect) => containers.extend(Container::from_inspect(inspect)),
            // Removed since the listing.
            Err(ApiError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(containers)
}

/// Waits for the next event that can change the configuration.
async fn next_relevant(
    events: &mut (impl Stream<Item = Result<EventMessage, ApiError>> + Unpin),
) -> Result<(), ConnectionError> {
    loop {
        let event = events.next().await.ok_or(ConnectionError::StreamEnded)??;
        let action = event.action.unwrap_or_default();
        if ACTIONS.contains(&action.as_str()) || action.starts_with("health_status") {
            return Ok(());
        }
    }
}

/// Where host-network containers are reached: `host.docker.internal` or
/// `host.containers.internal` when either resolves (Docker Desktop, Podman), else loopback.
async fn host_ip() -> String {
    for host in ["host.docker.internal:0", "host.containers.internal:0"] {
        if let Ok(Ok(mut addresses)) =
            timeout(Duration::from_secs(1), tokio::net::lookup_host(host)).await
        {
            if let Some(address) = addresses.next() {
                return address.ip().to_string();
            }
        }
    }
    "127.0.0.1".into()
}
