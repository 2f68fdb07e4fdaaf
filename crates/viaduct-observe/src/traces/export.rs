//! The exporter thread: batches spans and posts them to the collector over HTTP/1.1. A thread
//! with blocking I/O keeps the exporter off the runtime and needs no HTTP client stack.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::{proto, SpanRecord, TracingError, TracingSettings};

/// How long a span may wait before it is exported.
const EXPORT_INTERVAL: Duration = Duration::from_millis(500);
/// Spans per request to the collector.
const BATCH: usize = 512;

#[derive(Debug)]
pub(super) struct Exporter {
    thread: Thread,
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Exporter {
    pub(super) fn spawn(
        settings: Arc<TracingSettings>,
        queue: Arc<ArrayQueue<SpanRecord>>,
    ) -> Result<Exporter, TracingError> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("otlp-export".into())
                .spawn(move || run(&settings, &queue, &stop))
                .map_err(TracingError::Thread)?
        };
        Ok(Exporter {
            thread: handle.thread().clone(),
            stop,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Wakes the exporter early when a batch is ready.
    pub(super) fn nudge(&self, queue: &ArrayQueue<SpanRecord>) {
        if queue.len() >= BATCH {
            self.thread.unpark();
        }
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn run(settings: &TracingSettings, queue: &ArrayQueue<SpanRecord>, stop: &AtomicBool) {
    loop {
        let stopping = stop.load(Ordering::Acquire);
        while !queue.is_empty() {
            let batch: Vec<SpanRecord> = std::iter::from_fn(|| queue.pop()).take(BATCH).collect();
            let body = proto::export_request(&settings.resource, &batch);
            if let Err(e) = settings.collector.post(&body) {
                tracing::debug!(collector = %settings.collector.authority, error = %e, spans = batch.len(), "exporting spans failed; dropped");
            }
        }
        if stopping {
            return;
        }
        std::thread::park_timeout(EXPORT_INTERVAL);
    }
}
