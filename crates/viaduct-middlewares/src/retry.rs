//! `retry`: sends a request again, with exponential backoff, when it could not be
//! delivered (or, with `status`, when the backend answered one of those codes).
//!
//! What is sent again: a request nothing of which reached the backend (the connection
//! failed), as Traefik; one the backend received and failed without answering is not. A
//! `status` answer is retried for idempotent methods only, unless
//! `retryNonIdempotentMethod`. A body is replayed from memory up to
//! `maxRequestBodyBytes`; a larger one is streamed once, never retried.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use serde::Deserialize;
use viaduct_config::GoDuration;
use viaduct_observe::RetryAttempts;
use viaduct_upstream::{full_body, Body, BoxError};

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::status_ranges::StatusRanges;
use crate::upstream_failure::UpstreamFailure;

/// Traefik's default for `maxRequestBodyBytes`.
const DEFAULT_MAX_BODY: i64 = 2 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    attempts: i64,
    #[serde(default)]
    initial_interval: GoDuration,
    #[serde(default)]
    timeout: GoDuration,
    #[serde(default)]
    max_request_body_bytes: Option<i64>,
    #[serde(default)]
    status: Vec<String>,
    #[serde(default)]
    disable_retry_on_network_error: bool,
    #[serde(default)]
    retry_non_idempotent_method: bool,
}

#[derive(Debug)]
pub(crate) struct Retry {
    attempts: u32,
    initial_interval: Duration,
    /// The backoff grows by this factor per retry so that the last interval is twice the
    /// first (Traefik's choice).
    multiplier: f64,
    timeout: Option<Duration>,
    max_body: u64,
    status: StatusRanges,
    retry_network_errors: bool,
    retry_non_idempotent: bool,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if options.attempts <= 0 {
        return Err(format!(
            "option attempts: incorrect (or empty) value for attempt ({})",
            options.attempts
        ));
    }
    let attempts = u32::try_from(options.attempts)
        .map_err(|_| format!("option attempts: {} is too many", options.attempts))?;
    let multiplier = if attempts > 1 {
        2f64.powf(1.0 / f64::from(attempts - 1))
    } else {
        1.0
    };
    Ok(Arc::new(Retry {
        attempts,
        initial_interval: options.initial_interval.positive().unwrap_or_default(),
        multiplier,
        timeout: options.timeout.positive(),
        max_body: options
            .max_request_body_bytes
            .unwrap_or(DEFAULT_MAX_BODY)
            .max(0) as u64,
        status: StatusRanges::parse(&options.status, "status")?,
        retry_network_errors: !options.disable_retry_on_network_error,
        retry_non_idempotent: options.retry_non_idempotent_method,
    }))
}

impl Middleware for Retry {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        if self.attempts == 1 || request.headers().contains_key(http::header::UPGRADE) {
            return next.run(request);
        }
        Box::pin(self.run(request, next))
    }
}

impl Retry {
    async fn run(&self, request: Request, next: Next<'_>) -> Response {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let body = match buffer(body, self.max_body).await {
            Buffered::Whole(bytes) => bytes,
            Buffered::TooLarge(body) => return next.run(Request::from_parts(parts, body)).await,
            Buffered::Failed => return crate::responses::status(StatusCode::BAD_REQUEST),
        };
        let idempotent_ok = self.retry_non_idempotent || is_idempotent(&parts.method);
        let mut interval = self.initial_interval.as_secs_f64();
        let mut attempt = 1;
        loop {
            let mut request = Request::new(full_body(body.clone()));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            *request.extensions_mut() = parts.extensions.clone();
            let response = next.run(request).await;

            let again = match response.extensions().get::<UpstreamFailure>() {
                // Traefik sends again only what never reached the backend.
                Some(failure) => self.retry_network_errors && failure.retryable,
                None => idempotent_ok && self.status.contains(response.status().as_u16()),
            };
            let timed_out = self.timeout.is_some_and(|t| started.elapsed() >= t);
            if !again || attempt >= self.attempts || timed_out {
                let mut response = response;
                RetryAttempts::note(&mut response, attempt - 1);
                return response;
            }
            drop(response);
            attempt += 1;
            tracing::debug!(attempt, uri = %parts.uri, "retrying the request");
            if interval > 0.0 {
                // cenkalti/backoff's jitter (±50%), as Traefik uses it.
                let jitter = 0.5 + rand::random::<f64>();
                let mut wait = Duration::from_secs_f64(interval * jitter);
                if let Some(limit) = self.timeout {
                    wait = wait.min(limit.saturating_sub(started.elapsed()));
                }
                tokio::time::sleep(wait).await;
                interval *= self.multiplier;
            }
        }
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

enum Buffered {
    Whole(Bytes),
    /// Over the limit: what was read, followed by the rest, to be sent once.
    TooLarge(Body),
    Failed,
}

/// Reads `body` into memory if it has at most `limit` bytes.
async fn buffer(mut body: Body, limit: u64) -> Buffered {
    if body.is_end_stream() {
        return Buffered::Whole(Bytes::new());
    }
    if body.size_hint().lower() > limit {
        return Buffered::TooLarge(body);
    }
    let mut chunks = VecDeque::new();
    let mut total = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else {
            return Buffered::Failed;
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers are not replayed
        };
        total += data.len() as u64;
        chunks.push_back(data);
        if total > limit {
            return Buffered::TooLarge(Body::boxed(Prefixed { chunks, rest: body }));
        }
    }
    if chunks.len() == 1 {
        return Buffered::Whole(chunks.pop_front().unwrap_or_default());
    }
    let mut whole = BytesMut::with_capacity(total as usize);
    for chunk in chunks {
        whole.extend_from_slice(&chunk);
    }
    Buffered::Whole(whole.freeze())
}

/// Chunks already read, then the rest of the body.
pub(crate) struct Prefixed {
    chunks: VecDeque<Bytes>,
    rest: Body,
}

impl Prefixed {
    pub fn new(chunks: impl IntoIterator<Item = Bytes>, rest: Body) -> Self {
        Prefixed {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
            rest,
        }
    }
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(chunk) = this.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.chunks.iter().map(|c| c.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + buffered);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}
