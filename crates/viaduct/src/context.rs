//! What the compiler needs from the static configuration, shared by `run` and `check`.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use viaduct_api::ApiInfo;
use viaduct_config::StaticConfig;
use viaduct_observe::{EntryPointObserver, Hub};
use viaduct_proxy::{CompileContext, EntryPointInfo, EntryPointRuntime, TcpTransportDefaults};
use viaduct_tls::TlsShared;
use viaduct_upstream::TransportSettings;

/// The entry points' runtime settings (in configuration order) and the compile context.
pub fn build(
    config: &StaticConfig,
    observe: Arc<Hub>,
) -> anyhow::Result<(Vec<Arc<EntryPointRuntime>>, CompileContext)> {
    let mut runtimes = Vec::new();
    let mut infos = Vec::new();
    for (index, (name, ep)) in config.entry_points.iter().enumerate() {
        let mut runtime = EntryPointRuntime::new(name, index, ep)?;
        runtime.observer = EntryPointObserver::new(name, &observe);
        infos.push(EntryPointInfo {
            name: name.clone(),
            as_default: ep.as_default,
            protocol: runtime.protocol,
            port: runtime.address.port(),
            default_tls: ep.http.tls.clone(),
            redirect: ep
                .http
                .redirections
                .as_ref()
                .and_then(|r| r.entry_point.clone()),
        });
        runtimes.push(Arc::new(runtime));
    }
    let tls = TlsShared::new()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("preparing TLS")?;
    let ctx = CompileContext {
        entry_points: infos,
        default_transport: TransportSettings::from_static(&config.servers_transport),
        tls: Arc::new(tls),
        api: ApiInfo::from_static(config, SystemTime::now()).map(Arc::new),
        observe,
        tcp_transport: config
            .tcp_servers_transport
            .as_ref()
            .map(TcpTransportDefaults::from_static)
            .unwrap_or_default(),
    };
    Ok((runtimes, ctx))
}
