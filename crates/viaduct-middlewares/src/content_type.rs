//! `contentType`: a response that comes without a `Content-Type` gets one sniffed from the
//! start of its body, as Go's server does (Traefik v3 disables that sniffing unless this
//! middleware is used). `autoDetect: false` (deprecated) turns the middleware into a no-op.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::StatusCode;
use http_body_util::BodyExt;
use serde::Deserialize;
use viaduct_upstream::{full_body, Body};

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::sniff::detect_content_type;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    auto_detect: Option<bool>,
}

#[derive(Debug)]
pub(crate) struct ContentType;

#[derive(Debug)]
struct PassThrough;

pub(crate) fn build(
    options: &serde_json::Value,
    name: &str,
) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if let Some(auto_detect) = options.auto_detect {
        tracing::warn!(
            middleware = name,
            "contentType: autoDetect is deprecated; the middleware itself enables detection"
        );
        if !auto_detect {
            return Ok(Arc::new(PassThrough));
        }
    }
    Ok(Arc::new(ContentType))
}

impl Middleware for PassThrough {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        next.run(request)
    }
}

impl Middleware for ContentType {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let response = next.run(request).await;
            if !needs_sniffing(&response) {
                return response;
            }
            let (mut parts, mut body) = response.into_parts();
            // Go sniffs the first write, which for a proxied body is its first chunk.
            let first = match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers straight away: nothing to sniff, nothing lost but them.
                    Err(_) => return Response::from_parts(parts, Body::Empty),
                },
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "contentType: reading the response body failed");
                    return Response::from_parts(parts, Body::Empty);
                }
                None => return Response::from_parts(parts, Body::Empty),
            };
            if !first.is_empty() {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(detect_content_type(&first)),
                );
            }
            Response::from_parts(parts, rejoin(first, body).await)
        })
    }
}

/// Go sniffs only a body it may send and that nothing else describes.
fn needs_sniffing(response: &Response) -> bool {
    let status = response.status();
    let headers = response.headers();
    !headers.contains_key(header::CONTENT_TYPE)
        && headers
            .get(header::CONTENT_ENCODING)
            .is_none_or(|v| v.is_empty())
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
        && !status.is_informational()
}

/// The body again, its first chunk already read. Without a body type that can chain a chunk
/// and a stream, the rest is read here; only bodies of responses the backend did not type
/// pass through this middleware.
async fn rejoin(first: Bytes, mut rest: Body) -> Body {
    if http_body::Body::is_end_stream(&rest) {
        return full_body(first);
    }
    let mut all = BytesMut::from(&first[..]);
    while let Some(frame) = rest.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    all.extend_from_slice(&data);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "contentType: reading the response body failed");
                break;
            }
        }
    }
    full_body(all.freeze())
}
