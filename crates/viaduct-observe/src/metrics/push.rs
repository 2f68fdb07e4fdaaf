//! The OTLP metrics exporter: a thread of its own that pushes the registry's cumulative
//! metrics every `pushInterval`, and once more when the process stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};

use super::otlp::{export_request, OtlpMetricsError};
use super::Registry;
use crate::traces::unix_nanos_now;

/// The running exporter; [`OtlpPusher::stop`] pushes a last time and joins it.
#[derive(Debug)]
pub struct OtlpPusher {
    thread: Thread,
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl OtlpPusher {
    /// Starts pushing, if `metrics.otlp` is set; `Ok(None)` otherwise.
    pub fn start(registry: &Arc<Registry>) -> Result<Option<OtlpPusher>, OtlpMetricsError> {
        if registry.settings().otlp.is_none() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            let registry = registry.clone();
            std::thread::Builder::new()
                .name("otlp-metrics".into())
                .spawn(move || run(&registry, &stop))
                .map_err(OtlpMetricsError::Thread)?
        };
        Ok(Some(OtlpPusher {
            thread: handle.thread().clone(),
            stop,
            handle: Mutex::new(Some(handle)),
        }))
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

fn run(registry: &Registry, stop: &AtomicBool) {
    let Some(otlp) = registry.settings().otlp.as_ref() else {
        return;
    };
    let start = unix_nanos_now();
    let mut next = std::time::Instant::now() + otlp.push_interval;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let now = std::time::Instant::now();
        if stopping || now >= next {
            let body = export_request(registry, otlp, &registry.extras(), start, unix_nanos_now());
            if let Err(e) = otlp.collector.post(&body) {
                tracing::debug!(collector = %otlp.collector.authority, error = %e, "pushing OTLP metrics failed");
            }
            next = now + otlp.push_interval;
        }
        if stopping {
            return;
        }
        // Unparked early only by `stop`; a spurious wake-up just loops.
        std::thread::park_timeout(next.saturating_duration_since(std::time::Instant::now()));
    }
}
