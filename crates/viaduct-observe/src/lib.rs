//! Viaduct's observability, with Traefik's names: metrics (`metrics.prometheus`, `metrics.otlp`),
//! the access log (`accessLog`), the process log (`log`) and `/ping`.
//!
//! The [`Hub`] is built once from the static configuration. The compiler resolves metric
//! handles from it into each compiled router ([`RouteObserver`]) and the entry points hold an
//! [`EntryPointObserver`]; a request then only increments atomics and queues an access-log
//! record, which a thread of its own formats and writes.

#![forbid(unsafe_code)]

pub mod access_log;
mod exchange;
pub mod logging;
pub mod metrics;
mod notes;
mod otlp;
mod ping;
mod time;
pub mod traces;

use std::sync::Arc;

use viaduct_config::StaticConfig;

pub use access_log::{AccessLog, AccessLogError, AccessLogSettings, AccessRecord, UpstreamFacts};
pub use exchange::{EntryPointObserver, Exchange, RouteObserver, RouterSwitches};
pub use metrics::{MetricsSettings, Pusher, Registry, ScrapeExtras, TlsLabels};
pub use notes::{ClientUsername, RetryAttempts};
pub use otlp::{Collector, EndpointError, Transport};
pub use ping::Ping;
pub use time::UtcTime;
pub use traces::{Tracer, TracingError, TracingSettings};

/// The content type of the Prometheus text exposition.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything observed in this process, shared by entry points, the compiler and the internal
/// services. The default observes nothing.
#[derive(Debug, Default)]
pub struct Hub {
    pub metrics: Option<Arc<Registry>>,
    /// Push the metrics to `metrics.otlp`, `metrics.statsD` and `metrics.datadog`, those set.
    pub metrics_pushers: Vec<Pusher>,
    pub access_log: Option<AccessLog>,
    /// Set when `ping` is configured.
    pub ping: Option<Ping>,
    /// Set when `tracing` is configured (and its exporter could start).
    pub tracer: Option<Arc<Tracer>>,
}

impl Hub {
    /// Builds metrics, the access log (starting its writer), tracing (starting its exporter)
    /// and ping from the static configuration. What cannot be set up is logged and left out.
    pub fn from_static(config: &StaticConfig) -> Hub {
        let metrics = config
            .metrics
            .as_ref()
            .and_then(MetricsSettings::from_static)
            .map(|settings| Arc::new(Registry::new(settings)));
        let metrics_pushers = metrics.as_ref().map(Pusher::start_all).unwrap_or_default();
        // As in Traefik, an access log that cannot be set up is reported and left out: the
        // proxy still serves.
        let access_log = config.access_log.as_ref().and_then(|a| {
            match AccessLogSettings::from_static(a).and_then(AccessLog::start) {
                Ok(log) => Some(log),
                Err(e) => {
                    tracing::error!(error = %e, "the access log is disabled");
                    None
                }
            }
        });
        let ping = config
            .ping
            .as_ref()
            .map(|p| Ping::new(p.terminating_status_code));
        // A tracing setup Viaduct cannot serve is reported, not fatal: traffic matters more.
        let tracer = config.tracing.as_ref().and_then(|t| {
            match TracingSettings::from_static(t).and_then(Tracer::start) {
                Ok(tracer) => Some(Arc::new(tracer)),
                Err(e) => {
                    tracing::error!(error = %e, "tracing is disabled");
                    None
                }
            }
        });
        Hub {
            metrics,
            metrics_pushers,
            access_log,
            ping,
            tracer,
        }
    }

    /// Shutdown has begun: `/ping` answers with its terminating status from now on.
    pub fn terminate(&self) {
        if let Some(ping) = &self.ping {
            ping.terminate();
        }
    }

    /// At exit: write what the access log still holds.
    pub fn close(&self) {
        if let Some(log) = &self.access_log {
            log.close();
        }
        if let Some(tracer) = &self.tracer {
            tracer.close();
        }
        for pusher in &self.metrics_pushers {
            pusher.stop();
        }
    }

    /// SIGUSR1: reopen the access-log file.
    pub fn reopen_logs(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
        }
    }
}
