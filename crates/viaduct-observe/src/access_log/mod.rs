//! The access log (`accessLog`): one record per exchange, filtered, formatted and written by
//! a thread of its own. The request path only fills a record and hands it over a bounded
//! channel; when the writer falls behind (a slow disk), records are dropped and counted
//! rather than slowing requests down.

mod format;
mod json;
mod settings;
mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Version};

pub use format::format_line;
pub use settings::{AccessLogError, AccessLogSettings, Fields, Filters, Format, HeaderMode};

/// One exchange, as the access log sees it.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub start: SystemTime,
    pub duration: Duration,
    pub client: SocketAddr,
    pub method: Method,
    /// The request target as received (path and query).
    pub path: String,
    pub version: Version,
    /// The `Host` header (or the request's authority).
    pub host: String,
    pub tls: bool,
    pub request_content_size: u64,
    pub entry_point: Arc<str>,
    pub router: Option<Arc<str>>,
    pub service: Option<Arc<str>>,
    pub upstream: Option<UpstreamFacts>,
    pub status: u16,
    pub downstream_size: u64,
    /// The process-wide request number (`RequestCount`).
    pub request_count: u64,
    /// Times the `retry` middleware sent the request again (`RetryAttempts`).
    pub retry_attempts: u32,
    /// The user named by `basicAuth`/`digestAuth` credentials (`ClientUsername`).
    pub client_username: Option<Arc<str>>,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    /// Kept only when `fields.headers` keeps some.
    pub request_headers: Option<HeaderMap>,
    pub response_headers: Option<HeaderMap>,
}

/// What the proxy learnt from the backend that answered. The forwarding code attaches it to
/// the response's extensions when an access log wants it.
#[derive(Debug, Clone)]
pub struct UpstreamFacts {
    pub url: String,
    pub status: u16,
    /// From sending the request to the backend's response head.
    pub duration: Duration,
    /// When the request was sent.
    pub sent_at: std::time::Instant,
}

/// The handle the request path uses. Cloning shares the writer.
#[derive(Debug, Clone)]
pub struct AccessLog {
    settings: Arc<AccessLogSettings>,
    writer: Arc<writer::Writer>,
    dropped: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens the log file and starts the writer thread.
    pub fn start(settings: AccessLogSettings) -> Result<AccessLog, AccessLogError> {
        let settings = Arc::new(settings);
        let writer = Arc::new(writer::Writer::spawn(settings.clone())?);
        Ok(AccessLog {
            settings,
            writer,
            dropped: Arc::default(),
            requests: Arc::default(),
        })
    }

    pub fn settings(&self) -> &AccessLogSettings {
        &self.settings
    }

    /// The next `RequestCount`.
    pub fn next_request_number(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Hands a record to the writer, unless filters drop it. Never blocks.
    pub fn submit(&self, record: AccessRecord) {
        if !self
            .settings
            .filters
            .keep(record.status, record.retry_attempts, record.duration)
        {
            return;
        }
        if self.writer.push(Box::new(record)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Said once per thousand, not per line: the log is behind already.
            if dropped % 1000 == 1 {
                tracing::warn!(
                    dropped,
                    "access log: the writer is behind; lines are being dropped"
                );
            }
        }
    }

    /// Lines dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Reopens the log file (after a rotation moved it: SIGUSR1).
    pub fn reopen(&self) {
        self.writer.reopen();
    }

    /// Writes the queued lines and stops the writer (at shutdown). Records submitted later
    /// are dropped.
    pub fn close(&self) {
        self.writer.stop();
    }

    /// Whether records need the request's and response's headers.
    pub fn wants_headers(&self) -> bool {
        self.settings.fields.any_header_kept()
    }
}
