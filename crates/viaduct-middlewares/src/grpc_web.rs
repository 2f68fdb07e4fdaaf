//! `grpcWeb`: turns gRPC-Web requests from browsers into gRPC for the backend, and the
//! answers back (content types, text mode's base64, trailers in the body); answers the CORS
//! preflight of gRPC-Web calls for `allowOrigins` itself. Other requests pass untouched.

use std::sync::Arc;

use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_LENGTH, CONTENT_TYPE, ORIGIN, TE, TRAILER, VARY,
};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use viaduct_upstream::Body;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::grpc_web_body::{DecodedBody, WebResponseBody};

const GRPC: &str = "application/grpc";
const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    allow_origins: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct GrpcWeb {
    any_origin: bool,
    origins: Vec<String>,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    Ok(Arc::new(GrpcWeb {
        any_origin: options.allow_origins.iter().any(|o| o == "*"),
        origins: options.allow_origins,
    }))
}

impl Middleware for GrpcWeb {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        if is_grpc_web_preflight(&request) {
            let response = self.preflight(&request);
            return Box::pin(async move { response });
        }
        let Some(text) = grpc_web_mode(&request) else {
            return next.run(request);
        };
        let origin = self.allowed_origin(request.headers());
        Box::pin(async move {
            let request = to_grpc(request, text);
            let response = next.run(request).await;
            from_grpc(response, text, origin)
        })
    }
}

impl GrpcWeb {
    /// The request's `Origin` when it is allowed.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(ORIGIN)?;
        let allowed = self.any_origin
            || self
                .origins
                .iter()
                .any(|o| o.as_bytes() == origin.as_bytes());
        allowed.then(|| origin.clone())
    }

    /// rs/cors's answer to a preflight, as Traefik gives it.
    fn preflight(&self, request: &Request) -> Response {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        for vary in [
            "Origin",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ] {
            headers.append(VARY, HeaderValue::from_static(vary));
        }
        let Some(origin) = self.allowed_origin(request.headers()) else {
            return response;
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        if let Some(method) = request.headers().get(ACCESS_CONTROL_REQUEST_METHOD) {
            let method = method.to_str().unwrap_or("").to_ascii_uppercase();
            if let Ok(value) = HeaderValue::from_str(&method) {
                headers.insert(ACCESS_CONTROL_ALLOW_METHODS, value);
            }
        }
        let requested: Vec<String> = request
            .headers()
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(canonical)
            .collect();
        if let Ok(value) = HeaderValue::from_str(&requested.join(", ")) {
            if !requested.is_empty() {
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, value);
            }
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        response
    }
}

/// `Some(text mode)` for a gRPC-Web call.
fn grpc_web_mode(request: &Request) -> Option<bool> {
    if request.method() != Method::POST {
        return None;
    }
    let content_type = request.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    content_type
        .starts_with(GRPC_WEB)
        .then(|| content_type.starts_with(GRPC_WEB_TEXT))
}

fn is_grpc_web_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        && request
            .headers()
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|h| h.trim().eq_ignore_ascii_case("x-grpc-web"))
}

fn to_grpc(request: Request, text: bool) -> Request {
    let (mut parts, body) = request.into_parts();
    let incoming = if text { GRPC_WEB_TEXT } else { GRPC_WEB };
    if let Some(value) = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| HeaderValue::from_str(&v.replacen(incoming, GRPC, 1)).ok())
    {
        parts.headers.insert(CONTENT_TYPE, value);
    }
    // The browser's length is that of the gRPC-Web body, not of what the backend gets.
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(TE, HeaderValue::from_static("trailers"));
    let body = if text {
        Body::boxed(DecodedBody::new(body))
    } else {
        body
    };
    Request::from_parts(parts, body)
}

fn from_grpc(response: Response, text: bool, origin: Option<HeaderValue>) -> Response {
    let (mut parts, body) = response.into_parts();
    let headers = &mut parts.headers;
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    let is_grpc = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with(GRPC))
        .map(|v| v.replacen(GRPC, if text { GRPC_WEB_TEXT } else { GRPC_WEB }, 1));
    let body = match is_grpc.and_then(|v| HeaderValue::from_str(&v).ok()) {
        Some(content_type) => {
            headers.insert(CONTENT_TYPE, content_type);
            headers.remove(CONTENT_LENGTH);
            headers.remove(TRAILER);
            Body::boxed(WebResponseBody::new(body, text))
        }
        // Not a gRPC answer (an error page, a proxy error): as it is.
        None => body,
    };
    let mut exposed: Vec<String> = headers.keys().map(|n| canonical(n.as_str())).collect();
    exposed.dedup();
    exposed.push("grpc-status".into());
    exposed.push("grpc-message".into());
    if let Ok(value) = HeaderValue::from_str(&exposed.join(", ")) {
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value);
    }
    Response::from_parts(parts, body)
}

/// Go's canonical header form: `x-grpc-web` → `X-Grpc-Web`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}
