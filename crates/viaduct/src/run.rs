//! Running the proxy: entry points, providers, the reload loop and signals.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use viaduct_acme::AcmeService;
use viaduct_config::StaticConfig;
use viaduct_docker::DockerProvider;
use viaduct_providers::{Aggregator, FileProvider, MergedConfig, ProviderMessage, ReloadHandle};
use viaduct_proxy::{compile, CompileContext, ObjectStatus, Protocol, Snapshot, SnapshotHandle};

use viaduct_observe::logging::{self, LogHandle};
use viaduct_observe::Hub;
use viaduct_tls::CertificateRequest;

use crate::embedded;
use crate::static_load;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let loaded = static_load::load(args)?;
    let embedded = loaded.is_embedded();
    let mut config = loaded.config.clone();
    if embedded {
        // The embedded default must say so, whatever Traefik's default level (ERROR) hides.
        config.log.level = "INFO".into();
    }
    let log = logging::init(&config.log)?;
    if embedded {
        tracing::warn!(
            "no static configuration found: running the embedded default (entry point web on {}, a demo \
             page for every request). Give Viaduct your Traefik configuration with --configFile=traefik.yml, \
             or put traefik.yml in /etc/traefik/, $XDG_CONFIG_HOME/, $HOME/.config/ or the working directory",
            embedded::DEMO_ADDRESS
        );
    } else {
        tracing::info!(source = %loaded.describe(), "static configuration loaded");
    }
    for flag in &loaded.ignored_flags {
        tracing::warn!(flag = %flag, "ignored: a configuration file was found, and flags do not override it");
    }
    for key in config.unsupported_keys() {
        tracing::warn!(key = %key, "this static option is not supported yet; it has no effect");
    }
    raise_open_files_limit();

    let workers = std::env::var("VIADUCT_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    // One worker is the common container setting and the benchmark's: a current-thread runtime
    // then saves the work-stealing scheduler's bookkeeping on every wake-up.
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    runtime.block_on(serve(config, embedded, log))
}

async fn serve(config: StaticConfig, embedded: bool, log: LogHandle) -> anyhow::Result<()> {
    let hub = Arc::new(Hub::from_static(&config));
    let (entry_points, ctx) = crate::context::build(&config, hub.clone())?;
    // Stored ACME certificates are published before the first compile, so a restart serves them at once.
    let acme = start_acme(&config, &ctx);
    let snapshots = SnapshotHandle::new(compile(&Default::default(), &ctx, None, 0));
    if let Some(registry) = &hub.metrics {
        // Pushed metrics (OTLP) read server health and certificates from the live snapshot.
        let snapshots = snapshots.clone();
        registry.set_extras_source(move || viaduct_proxy::scrape_extras(&snapshots.load()));
    }

    // Bind every listener before anything else, so a port in use fails the start at once.
    let mut listeners = Vec::new();
    let mut udp_sockets = Vec::new();
    for ep in &entry_points {
        if ep.protocol == Protocol::Udp {
            let socket = viaduct_proxy::bind_udp(ep).with_context(|| {
                format!(
                    "entry point {}: cannot listen on {}/udp",
                    ep.name, ep.address
                )
            })?;
            tracing::info!(entry_point = %ep.name, address = %socket.local_addr()?, "listening (UDP)");
            udp_sockets.push((socket, ep.clone()));
            continue;
        }
        let listener = viaduct_proxy::bind(ep)
            .with_context(|| format!("entry point {}: cannot listen on {}", ep.name, ep.address))?;
        tracing::info!(entry_point = %ep.name, address = %listener.local_addr()?, "listening");
        listeners.push((listener, ep.clone()));
    }

    let (provider_tx, provider_rx) = mpsc::channel::<ProviderMessage>(64);
    if let Some(internal) = crate::internal::dynamic_config(&config, embedded) {
        let message = ProviderMessage {
            provider: "internal".into(),
            config: Arc::new(internal),
        };
        provider_tx.send(message).await.ok();
    }
    let mut reload: Option<ReloadHandle> = None;
    if let Some(file) = &config.providers.file {
        let provider = FileProvider::new(file).context("providers.file")?;
        reload = Some(provider.reload_handle());
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    if let Some(docker) = &config.providers.docker {
        let provider = DockerProvider::new(docker)?;
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    if let Some(http) = &config.providers.http {
        let provider = viaduct_http_provider::HttpProvider::new(http)?;
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    if let Some(ingress) = &config.providers.kubernetes_ingress {
        // The API server is contacted by the task: unreachable at start, it is retried.
        let provider = viaduct_kubernetes::KubernetesIngressProvider::new(ingress)
            .context("providers.kubernetesIngress")?;
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    if let Some(redis) = &config.providers.redis {
        // Redis is contacted by the task: down at start, it is retried while the rest serves.
        let provider = viaduct_kv::RedisProvider::new(redis)?;
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    if let Some(etcd) = &config.providers.etcd {
        // As Redis: etcd or Consul down at start is retried while the rest serves.
        let provider = viaduct_kv::EtcdProvider::new(etcd)?;
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    if let Some(consul) = &config.providers.consul {
        let provider = viaduct_kv::ConsulProvider::new(consul)?;
        tokio::spawn(provider.run(provider_tx.clone()));
    }
    drop(provider_tx);

    let throttle = config
        .providers
        .providers_throttle_duration
        .positive()
        .unwrap_or(Duration::ZERO);
    let (merged_tx, merged_rx) = watch::channel(Arc::new(MergedConfig::default()));
    tokio::spawn(Aggregator::new(throttle).run(provider_rx, merged_tx));
    let (requests_tx, requests_rx) = watch::channel(Vec::new());
    let (recompile_tx, recompile_rx) = mpsc::channel(1);
    tokio::spawn(acme.run(requests_rx, recompile_tx));
    let reloads = Reload {
        ctx,
        snapshots: snapshots.clone(),
        certificate_requests: requests_tx,
        certificates_changed: recompile_rx,
    };
    tokio::spawn(apply_configurations(merged_rx, reloads));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    for (listener, ep) in listeners {
        servers.push(tokio::spawn(viaduct_proxy::serve(
            listener,
            ep,
            snapshots.clone(),
            stop_rx.clone(),
        )));
    }
    for (socket, ep) in udp_sockets {
        servers.push(tokio::spawn(viaduct_proxy::serve_udp(
            socket,
            ep,
            snapshots.clone(),
            stop_rx.clone(),
        )));
    }

    wait_for_shutdown(reload, &hub, &log).await?;
    // Load balancers in front learn from /ping that this instance is going away.
    hub.terminate();

    // Traefik's lifecycle: keep accepting for requestAcceptGraceTimeout, then stop accepting
    // and let each entry point drain for its graceTimeOut.
    let accept_grace = entry_points
        .iter()
        .map(|ep| ep.request_accept_grace_timeout)
        .max()
        .unwrap_or_default();
    if !accept_grace.is_zero() {
        tracing::info!(grace = ?accept_grace, "still accepting requests before shutdown");
        tokio::time::sleep(accept_grace).await;
    }
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    hub.close();
    tracing::info!("stopped");
    Ok(())
}

/// What the reload loop works with besides the merged configurations.
struct Reload {
    ctx: CompileContext,
    snapshots: SnapshotHandle,
    /// Tells the ACME resolvers which certificates the routers ask for.
    certificate_requests: watch::Sender<Vec<CertificateRequest>>,
    /// The ACME resolvers obtained or renewed a certificate: compile again so that it is served.
    certificates_changed: mpsc::Receiver<()>,
}

/// How long the configuration stays unchanged before the code that compiled it is released.
const SETTLED_AFTER: Duration = Duration::from_secs(1);

/// The reload loop: every merged configuration is compiled into a new snapshot and swapped in.
/// Requests in flight finish on the snapshot they started with.
async fn apply_configurations(mut merged: watch::Receiver<Arc<MergedConfig>>, mut reload: Reload) {
    let mut reported = ObjectStatus::default();
    // The start-up code (and the compiler's, after a reload) is released once the
    // configuration has been quiet for a while; see `viaduct_startup_pages`.
    let release = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(release);
    let mut release_pending = false;
    loop {
        tokio::select! {
            changed = merged.changed() => if changed.is_err() { return },
            Some(()) = reload.certificates_changed.recv() => {
                tracing::debug!("ACME certificates changed; recompiling");
            }
            () = &mut release, if release_pending => {
                release_pending = false;
                match viaduct_startup_pages::release() {
                    Ok(bytes) => tracing::debug!(kib = bytes / 1024, "released the start-up code's pages"),
                    Err(why) => tracing::debug!("start-up code's pages kept: {why}"),
                }
                continue;
            }
        }
        let next = merged.borrow_and_update().clone();
        let previous = reload.snapshots.load_full();
        let started = std::time::Instant::now();
        let snapshot = compile(&next.config, &reload.ctx, Some(&previous), next.generation);
        report(&snapshot, &mut reported);
        let routers: usize = snapshot
            .entry_points
            .iter()
            .map(|ep| ep.routers.len())
            .sum();
        tracing::info!(
            generation = next.generation,
            routes = routers,
            elapsed = ?started.elapsed(),
            "configuration applied"
        );
        let requests = snapshot.certificate_requests.clone();
        reload.snapshots.store(snapshot);
        release
            .as_mut()
            .reset(tokio::time::Instant::now() + SETTLED_AFTER);
        release_pending = true;
        if let Some(metrics) = &reload.ctx.observe.metrics {
            metrics.config_reloaded();
        }
        reload.certificate_requests.send_if_modified(|current| {
            let modified = *current != requests;
            *current = requests;
            modified
        });
    }
}

/// Sets up the ACME resolvers (`certificatesResolvers`). The service runs even without any, to report routers whose
/// `certResolver` does not exist.
fn start_acme(config: &StaticConfig, ctx: &CompileContext) -> AcmeService {
    let (service, errors) =
        AcmeService::new(&config.certificates_resolvers, ctx.tls.acme().clone());
    for error in errors {
        tracing::error!("{error}; routers using this resolver get the default certificate");
    }
    for (name, entry_point) in service.http_challenge_entry_points() {
        if !ctx.entry_points.iter().any(|ep| ep.name == entry_point) {
            tracing::error!(resolver = %name, entry_point = %entry_point, "httpChallenge.entryPoint does not exist; HTTP-01 challenges cannot be answered");
        }
    }
    service
}

/// Logs configuration problems once, when they appear, not on every reload.
fn report(snapshot: &Snapshot, reported: &mut ObjectStatus) {
    for (object, messages) in &snapshot.status.errors {
        if reported.errors.get(object) != Some(messages) {
            for message in messages {
                tracing::error!(object = %object, "{message}; the object is disabled");
            }
        }
    }
    for (object, messages) in &snapshot.status.warnings {
        if reported.warnings.get(object) != Some(messages) {
            for message in messages {
                tracing::warn!(object = %object, "{message}");
            }
        }
    }
    *reported = snapshot.status.clone();
}

async fn wait_for_shutdown(
    reload: Option<ReloadHandle>,
    hub: &Hub,
    log: &LogHandle,
) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    let mut rotate = signal(SignalKind::user_defined1())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: re-reading the file provider");
                if let Some(reload) = &reload {
                    reload.reload();
                }
            }
            _ = rotate.recv() => {
                tracing::info!("SIGUSR1: reopening the log files");
                hub.reopen_logs();
                if let Err(e) = log.reopen() {
                    tracing::error!(error = %e, "reopening the log file failed");
                }
            }
            _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); return Ok(()); }
            _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); return Ok(()); }
        }
    }
}

/// Traefik raises the soft open-files limit to the hard limit so thousands of connections
/// work out of the box; so do we.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
}
