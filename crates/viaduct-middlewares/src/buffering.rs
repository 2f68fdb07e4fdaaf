//! `buffering`: reads the whole request before forwarding it, and the whole response before
//! answering, in memory up to `mem*BodyBytes` and in a temporary file beyond. Bodies over
//! `max*BodyBytes` are refused: 413 for a request, 500 for a response, as Traefik. With
//! `retryExpression`, the request is sent again from the buffer while the expression holds.

use std::sync::Arc;

use http::header::{
    HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE,
};
use http::StatusCode;
use http_body::Body as _;
use serde::Deserialize;
use viaduct_upstream::Body;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::retry_expression::{Attempt, RetryCondition};
use crate::spool::{Spool, SpoolError, Spooled};

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
    /// When to send the request again, judged on each attempt's answer.
    retry: Option<RetryCondition>,
}

/// oxy's bound on `retryExpression` attempts, whatever the expression says.
const MAX_ATTEMPTS: u32 = 10;

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let retry = match options.retry_expression.trim() {
        "" => None,
        text => Some(
            RetryCondition::parse(text)
                .map_err(|e| format!("option retryExpression: {text:?}: {e}"))?,
        ),
    };
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
        retry,
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
        let spooled = if body.is_end_stream() {
            None
        } else {
            let limits = (self.mem_request, self.max_request);
            match spool(body, &mut parts.headers, limits, &REQUEST).await {
                Ok(spooled) => Some(spooled),
                Err(refusal) => return refusal,
            }
        };

        let mut attempts = 0;
        loop {
            attempts += 1;
            let body = match &spooled {
                None => Body::Empty,
                Some(spooled) => match spooled.body().await {
                    Ok(body) => body,
                    Err(e) => return spool_failed(&e),
                },
            };
            let mut request = Request::new(body);
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            *request.extensions_mut() = parts.extensions.clone();
            let response = self.buffer_response(next.run(request).await).await;
            let again = self.retry.as_ref().is_some_and(|retry| {
                attempts < MAX_ATTEMPTS
                    && retry.holds(&Attempt {
                        attempts,
                        status: response.status().as_u16(),
                        method: &parts.method,
                    })
            });
            if !again {
                return response;
            }
            tracing::debug!(attempts, uri = %parts.uri, "buffering: sending the request again");
        }
    }

    /// The response, read whole (or the answer saying why it could not be).
    async fn buffer_response(&self, response: Response) -> Response {
        let (mut parts, body) = response.into_parts();
        if body.is_end_stream() {
            return Response::from_parts(parts, body);
        }
        let limits = (self.mem_response, self.max_response);
        let spooled = match spool(body, &mut parts.headers, limits, &RESPONSE).await {
            Ok(spooled) => spooled,
            Err(refusal) => return refusal,
        };
        match spooled.body().await {
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

/// The rest of the request body is left unread: the connection cannot carry another
/// request, and the client is told so rather than finding out on its next request.
/// How a body that cannot be buffered is answered, for requests and for responses.
struct Refusals {
    /// Over `max*BodyBytes`.
    too_large: fn() -> Response,
    /// The body failed while being read.
    unreadable: StatusCode,
    what: &'static str,
}

const REQUEST: Refusals = Refusals {
    too_large,
    unreadable: StatusCode::BAD_REQUEST,
    what: "request",
};

const RESPONSE: Refusals = Refusals {
    too_large: response_too_large,
    unreadable: StatusCode::BAD_GATEWAY,
    what: "response",
};

/// Reads `body` whole (in memory up to `memory` bytes, in a temporary file beyond, refused
/// over `max`) and sets `headers` to its length; the error is the answer to give instead.
async fn spool(
    body: Body,
    headers: &mut HeaderMap,
    (memory, max): (u64, u64),
    refusals: &Refusals,
) -> Result<Spooled, Response> {
    let spooled = match Spool::new(memory).collect(body, max).await {
        Ok(spool) => spool.finish().await,
        Err(SpoolError::TooLarge) => return Err((refusals.too_large)()),
        Err(SpoolError::Body(e)) => {
            tracing::debug!(error = %e, "reading the {} body failed", refusals.what);
            return Err(crate::responses::status(refusals.unreadable));
        }
        Err(SpoolError::Io(e)) => return Err(spool_failed(&e)),
    };
    let spooled = spooled.map_err(|e| spool_failed(&e))?;
    headers.remove(TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(spooled.len()));
    Ok(spooled)
}

fn too_large() -> Response {
    let mut response = plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn response_too_large() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

fn spool_failed(error: &std::io::Error) -> Response {
    tracing::warn!(%error, "buffering a body in a temporary file failed");
    crate::responses::status(StatusCode::INTERNAL_SERVER_ERROR)
}
