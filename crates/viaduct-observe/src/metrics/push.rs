//! The pushing exporters (OTLP, StatsD, Datadog, InfluxDB): each on a thread of its own that pushes the
//! registry every `pushInterval`, and once more when the process stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::influx::InfluxExporter;
use super::otlp::export_request;
use super::statsd::StatsdExporter;
use super::Registry;
use crate::traces::unix_nanos_now;

/// One running exporter; [`Pusher::stop`] pushes a last time and joins it.
#[derive(Debug)]
pub struct Pusher {
    thread: Thread,
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Pusher {
    /// Starts a pusher for every pushing backend the registry's settings name. One that cannot
    /// start (no thread) is logged and left out.
    pub fn start_all(registry: &Arc<Registry>) -> Vec<Pusher> {
        let mut pushers = Vec::new();
        let settings = registry.settings();
        if let Some(otlp) = &settings.otlp {
            let start = unix_nanos_now();
            let registry = registry.clone();
            let push = move || {
                let Some(otlp) = &registry.settings().otlp else {
                    return;
                };
                let body =
                    export_request(&registry, otlp, &registry.extras(), start, unix_nanos_now());
                if let Err(e) = otlp.collector.post(&body) {
                    tracing::debug!(collector = %otlp.collector.authority, error = %e, "pushing OTLP metrics failed");
                }
            };
            pushers.extend(spawn("otlp-metrics", otlp.push_interval, push));
        }
        for statsd in &settings.statsd {
            let mut exporter = StatsdExporter::new(statsd.clone());
            let registry = registry.clone();
            let push = move || {
                if let Err(e) = exporter.push(&registry, &registry.extras()) {
                    tracing::debug!(error = %e, "pushing metrics failed");
                }
            };
            pushers.extend(spawn(
                exporter_name(statsd.flavor),
                statsd.push_interval,
                push,
            ));
        }
        if let Some(influx) = &settings.influx {
            let mut exporter = InfluxExporter::new(influx.clone());
            let registry = registry.clone();
            let authority = influx.collector.authority.clone();
            let push = move || {
                if let Err(e) = exporter.push(&registry, &registry.extras()) {
                    tracing::debug!(server = %authority, error = %e, "writing metrics to InfluxDB failed");
                }
            };
            pushers.extend(spawn("influxdb-metrics", influx.push_interval, push));
        }
        pushers
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn exporter_name(flavor: super::Flavor) -> &'static str {
    match flavor {
        super::Flavor::Statsd => "statsd-metrics",
        super::Flavor::Datadog => "datadog-metrics",
    }
}

fn spawn(
    name: &str,
    interval: Duration,
    mut push: impl FnMut() + Send + 'static,
) -> Option<Pusher> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(interval, &stopping, &mut push));
    match spawned {
        Ok(handle) => Some(Pusher {
            thread: handle.thread().clone(),
            stop,
            handle: Mutex::new(Some(handle)),
        }),
        Err(e) => {
            tracing::error!(exporter = name, error = %e, "cannot start the metrics exporter thread; it is disabled");
            None
        }
    }
}

fn run(interval: Duration, stop: &AtomicBool, push: &mut impl FnMut()) {
    let mut next = Instant::now() + interval;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let now = Instant::now();
        if stopping || now >= next {
            push();
            next = now + interval;
        }
        if stopping {
            return;
        }
        // Unparked early only by `stop`; a spurious wake-up just loops.
        std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
    }
}
