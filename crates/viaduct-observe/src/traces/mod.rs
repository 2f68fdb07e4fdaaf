//! Tracing (`tracing`): OpenTelemetry spans with Traefik's names — `EntryPoint` (server),
//! `Router`, `Service` and `ReverseProxy` (client) — W3C trace context read from the client
//! and propagated to the backend, exported over OTLP/HTTP (protobuf) by a thread of its own.
//!
//! Sampling is parent-based as in Traefik: a sampled parent is followed, an unsampled one too
//! (nothing is recorded and its `traceparent` passes through untouched), and a request without
//! one is sampled with probability `sampleRate`.

mod export;
mod ids;
mod proto;
mod settings;
mod spans;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use http::{HeaderMap, HeaderValue};

pub use settings::{TracingError, TracingSettings};
pub use spans::ExchangeFacts;

/// Spans waiting for the exporter before new ones are dropped.
const QUEUE: usize = 8192;

/// The process's tracer.
#[derive(Debug)]
pub struct Tracer {
    settings: Arc<TracingSettings>,
    queue: Arc<ArrayQueue<SpanRecord>>,
    exporter: export::Exporter,
    dropped: AtomicU64,
}

/// One sampled request's identifiers: the trace, the client's parent span, and the four spans
/// Viaduct records.
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: [u8; 16],
    pub parent: Option<[u8; 8]>,
    pub entry_point: [u8; 8],
    pub router: [u8; 8],
    pub service: [u8; 8],
    pub proxy: [u8; 8],
    pub start: SystemTime,
}

/// A finished span, ready to export.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: std::borrow::Cow<'static, str>,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, AttributeValue)>,
    pub error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal,
    Server,
    Client,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Text(String),
    Int(i64),
}

impl Tracer {
    pub fn start(settings: TracingSettings) -> Result<Tracer, TracingError> {
        let settings = Arc::new(settings);
        let queue = Arc::new(ArrayQueue::new(QUEUE));
        let exporter = export::Exporter::spawn(settings.clone(), queue.clone())?;
        Ok(Tracer {
            settings,
            queue,
            exporter,
            dropped: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &TracingSettings {
        &self.settings
    }

    /// Starts a trace for a request, unless it is not sampled.
    pub fn begin(&self, headers: &HeaderMap) -> Option<Trace> {
        let parent = headers.get("traceparent").and_then(parse_traceparent);
        let (trace_id, parent_span) = match parent {
            Some(p) if !p.sampled => return None,
            Some(p) => (p.trace_id, Some(p.span_id)),
            None => {
                if !ids::sampled(self.settings.sample_rate) {
                    return None;
                }
                (ids::trace_id(), None)
            }
        };
        Some(Trace {
            trace_id,
            parent: parent_span,
            entry_point: ids::span_id(),
            router: ids::span_id(),
            service: ids::span_id(),
            proxy: ids::span_id(),
            start: SystemTime::now(),
        })
    }

    /// Queues finished spans for export; drops them when the exporter is behind.
    pub fn submit(&self, spans: Vec<SpanRecord>) {
        for span in spans {
            if self.queue.push(span).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.exporter.nudge(&self.queue);
    }

    /// Exports what is queued and stops the exporter (at shutdown).
    pub fn close(&self) {
        self.exporter.stop();
    }
}

impl Trace {
    /// The `traceparent` sent to the backend: this trace, with the `ReverseProxy` span as the
    /// backend's parent.
    pub fn traceparent(&self) -> Option<HeaderValue> {
        let value = format!("00-{}-{}-01", hex(&self.trace_id), hex(&self.proxy));
        HeaderValue::from_str(&value).ok()
    }

    /// Unix nanoseconds `offset` after the trace started.
    pub fn at(&self, offset: Duration) -> u64 {
        unix_nanos(self.start + offset)
    }
}

struct Parent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; anything else is ignored (a new
/// trace starts), as the W3C recommendation asks.
fn parse_traceparent(value: &HeaderValue) -> Option<Parent> {
    let text = value.to_str().ok()?.trim();
    let mut parts = text.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2
        || version == "ff"
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    unhex(trace, &mut trace_id)?;
    unhex(span, &mut span_id)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str, out: &mut [u8]) -> Option<()> {
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(())
}

pub(crate) fn unix_nanos_now() -> u64 {
    unix_nanos(SystemTime::now())
}

pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip_and_rejects() {
        let v = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let p = parse_traceparent(&v).unwrap();
        assert!(p.sampled);
        assert_eq!(hex(&p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p.span_id), "00f067aa0ba902b7");
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(
                parse_traceparent(&HeaderValue::from_static(bad)).is_none(),
                "{bad}"
            );
        }
        let unsampled =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(!parse_traceparent(&unsampled).unwrap().sampled);
    }
}
