//! `errors`: when the response status is one of `status`, answers with a page fetched from
//! `service` instead (GET `query`, with the client's headers), under the original status
//! or the one `statusRewrites` maps it to.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use http::{Method, StatusCode, Uri};
use serde::Deserialize;
use viaduct_upstream::{Body, ServiceNode};

use crate::build::BuildContext;
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::status_ranges::StatusRanges;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    status: Vec<String>,
    #[serde(default)]
    status_rewrites: BTreeMap<String, u16>,
    #[serde(default)]
    service: String,
    #[serde(default)]
    query: String,
}

pub(crate) struct Errors {
    status: StatusRanges,
    rewrites: Vec<(StatusRanges, StatusCode)>,
    service: Arc<ServiceNode>,
    /// The page's path and query, `{status}`, `{originalStatus}` and `{url}` still in it.
    query: String,
}

impl std::fmt::Debug for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Errors")
            .field("status", &self.status)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

pub(crate) fn build(
    options: &serde_json::Value,
    ctx: &mut BuildContext<'_>,
) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let status = StatusRanges::parse(&options.status, "status")?;
    let mut rewrites = Vec::new();
    for (from, to) in &options.status_rewrites {
        let ranges = StatusRanges::parse(std::slice::from_ref(from), "statusRewrites")?;
        let to = StatusCode::from_u16(*to)
            .map_err(|_| format!("option statusRewrites: {to} is not a status code"))?;
        rewrites.push((ranges, to));
    }
    if options.service.is_empty() {
        return Err("option service: the service of the error pages is missing".into());
    }
    let service = ctx
        .services
        .service(&options.service)
        .map_err(|e| format!("option service: {e}"))?;
    let query = if options.query.is_empty() {
        String::new()
    } else {
        format!("/{}", options.query.trim_start_matches('/'))
    };
    Ok(Arc::new(Errors {
        status,
        rewrites,
        service,
        query,
    }))
}

impl Middleware for Errors {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            // What the page request needs of the original, kept before it moves on.
            let headers = request.headers().clone();
            let url = full_url(&request, ctx.tls);
            let response = next.run(request).await;
            let original = response.status();
            if !self.status.contains(original.as_u16()) {
                return response;
            }
            drop(response);
            let status = self
                .rewrites
                .iter()
                .find(|(from, _)| from.contains(original.as_u16()))
                .map_or(original, |(_, to)| *to);
            let Some(page) = self.page_request(headers, &url, status, original) else {
                return crate::responses::status(status);
            };
            let mut answer = ctx.forwarder.forward(page, &self.service).await;
            *answer.status_mut() = status;
            answer
        })
    }
}

impl Errors {
    fn page_request(
        &self,
        headers: http::HeaderMap,
        url: &str,
        status: StatusCode,
        original: StatusCode,
    ) -> Option<Request> {
        let path = self
            .query
            .replace("{status}", status.as_str())
            .replace("{originalStatus}", original.as_str())
            .replace("{url}", &query_escape(url));
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        let uri: Uri = path.parse().ok()?;
        let mut request = Request::new(Body::Empty);
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        // A GET without a body: the original's framing does not apply.
        request.headers_mut().remove(http::header::CONTENT_LENGTH);
        request
            .headers_mut()
            .remove(http::header::TRANSFER_ENCODING);
        Some(request)
    }
}

/// The request's absolute URL, as Traefik gives it to `{url}`.
fn full_url(request: &Request, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path}")
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_go() {
        assert_eq!(query_escape("/a b?x=1&y=é"), "%2Fa+b%3Fx%3D1%26y%3D%C3%A9");
        assert_eq!(query_escape("safe-_.~"), "safe-_.~");
    }
}
