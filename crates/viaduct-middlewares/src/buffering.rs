//! `buffering`: reads the whole request before forwarding it, and the whole response before
//! answering, in memory up to `mem*BodyBytes` and in a temporary file beyond. Bodies over
//! `max*BodyBytes` are refused: 413 for a request, 500 for a response, as Traefik.

use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::StatusCode;
use http_body::Body as _;
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::spool::{Spool, SpoolError};

const DEFAULT_MEMORY: i64 = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    max_request_body_bytes: i64,
    #[serde(default)]
    mem_request_body_bytes: Option<i64>,
    #[serde(default)]
    max_response_body_bytes: i64,
    #[serde(default)]
    mem_response_body_bytes: Option<i64>,
    #[serde(default)]
    retry_expression: String,
}

#[derive(Debug)]
pub(crate) struct Buffering {
    /// 0: no limit.
    max_request: u64,
    mem_request: u64,
    max_response: u64,
    mem_response: u64,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if !options.retry_expression.is_empty() {
        return Err(format!(
            "option retryExpression: {:?}: retrying from the buffering middleware is not supported (use the retry middleware)",
            options.retry_expression
        ));
    }
    let size = |value: i64, option: &str| {
        u64::try_from(value).map_err(|_| format!("option {option}: {value} is negative"))
    };
    let memory = |value: Option<i64>, option: &str| match value {
        None | Some(0) => Ok(DEFAULT_MEMORY as u64),
        Some(v) => size(v, option),
    };
    Ok(Arc::new(Buffering {
        max_request: size(options.max_request_body_bytes, "maxRequestBodyBytes")?,
        mem_request: memory(options.mem_request_body_bytes, "memRequestBodyBytes")?,
        max_response: size(options.max_response_body_bytes, "maxResponseBodyBytes")?,
        mem_response: memory(options.mem_response_body_bytes, "memResponseBodyBytes")?,
    }))
}

impl Middleware for Buffering {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        // A protocol switch has no body to hold.
        if request.headers().contains_key(UPGRADE) {
            return next.run(request);
        }
        Box::pin(self.run(request, next))
    }
}

impl Buffering {
    async fn run(&self, request: Request, next: Next<'_>) -> Response {
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if self.max_request > 0 && declared.is_some_and(|len| len > self.max_request) {
            return too_large();
        }
        let (mut parts, body) = request.into_parts();
        let body = if body.is_end_stream() {
            body
        } else {
            let spool = match Spool::new(self.mem_request)
                .collect(body, self.max_request)
                .await
            {
                Ok(spool) => spool,
                Err(SpoolError::TooLarge) => return too_large(),
                Err(SpoolError::Body(e)) => {
                    tracing::debug!(error = %e, "reading the request body failed");
                    return crate::responses::status(StatusCode::BAD_REQUEST);
                }
                Err(SpoolError::Io(e)) => return spool_failed(&e),
            };
            parts.headers.remove(TRANSFER_ENCODING);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(spool.len()));
            match spool.into_body().await {
                Ok(body) => body,
                Err(e) => return spool_failed(&e),
            }
        };
        let response = next.run(Request::from_parts(parts, body)).await;

        let (mut parts, body) = response.into_parts();
        if body.is_end_stream() {
            return Response::from_parts(parts, body);
        }
        let spool = match Spool::new(self.mem_response)
            .collect(body, self.max_response)
            .await
        {
            Ok(spool) => spool,
            Err(SpoolError::TooLarge) => return response_too_large(),
            Err(SpoolError::Body(e)) => {
                tracing::debug!(error = %e, "reading the response body failed");
                return crate::responses::status(StatusCode::BAD_GATEWAY);
            }
            Err(SpoolError::Io(e)) => return spool_failed(&e),
        };
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(spool.len()));
        match spool.into_body().await {
            Ok(body) => Response::from_parts(parts, body),
            Err(e) => spool_failed(&e),
        }
    }
}

/// Traefik's answers here carry Go's status text, without a newline.
fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(viaduct_upstream::full_body(text));
    *response.status_mut() = status;
    response
}

fn too_large() -> Response {
    plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
}

fn response_too_large() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

fn spool_failed(error: &std::io::Error) -> Response {
    tracing::warn!(%error, "buffering a body in a temporary file failed");
    crate::responses::status(StatusCode::INTERNAL_SERVER_ERROR)
}
