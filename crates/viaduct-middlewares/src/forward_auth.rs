//! `forwardAuth`: asks an authentication server about each request. A 2xx answer lets the
//! request through (with selected headers of the answer copied onto it); any other answer is
//! returned to the client as it is.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use regex::Regex;
use serde::Deserialize;
use viaduct_upstream::{full_body, Body, Transport, TransportSettings};

use crate::build::BuildContext;
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::forward_auth_headers::{auth_request_headers, canonical_name, ForwardedPolicy};

/// Traefik's client gives the whole exchange with the authentication server 30 seconds.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    address: String,
    #[serde(default)]
    tls: Option<TlsOptions>,
    #[serde(default)]
    trust_forward_header: bool,
    #[serde(default)]
    auth_response_headers: Vec<String>,
    #[serde(default)]
    auth_response_headers_regex: String,
    #[serde(default)]
    auth_request_headers: Vec<String>,
    #[serde(default)]
    add_auth_cookies_to_response: Vec<String>,
    /// Only names the user in Traefik's access log.
    #[serde(default)]
    header_field: String,
    #[serde(default)]
    forward_body: bool,
    #[serde(default)]
    max_body_size: Option<i64>,
    #[serde(default)]
    max_response_body_size: Option<i64>,
    #[serde(default)]
    preserve_location_header: bool,
    #[serde(default)]
    preserve_request_method: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TlsOptions {
    #[serde(default)]
    ca: String,
    #[serde(default)]
    cert: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    insecure_skip_verify: bool,
    /// Deprecated, without effect.
    #[serde(default)]
    ca_optional: Option<bool>,
}

#[derive(Debug)]
pub(crate) struct ForwardAuth {
    address: Uri,
    host: HeaderValue,
    transport: Arc<Transport>,
    policy: ForwardedPolicy,
    response_headers: Vec<HeaderName>,
    response_headers_regex: Option<Regex>,
    auth_cookies: Vec<String>,
    /// `None`: the body is not sent; `Some(None)`: sent whatever its size.
    forward_body: Option<Option<usize>>,
    max_response_body: Option<usize>,
    preserve_location: bool,
    preserve_method: bool,
}

/// The transport kept across reloads while the TLS settings stay the same, so that pooled
/// connections to the authentication server survive a reload.
#[derive(Default)]
struct CarriedTransport(Mutex<Option<Arc<Transport>>>);

pub(crate) fn build(
    options: &serde_json::Value,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Middleware>, String> {
    let o: Options = crate::options::decode(options)?;
    let address: Uri = o
        .address
        .parse()
        .map_err(|e| format!("option address: {:?} is not a URL: {e}", o.address))?;
    let scheme_ok = matches!(address.scheme_str(), Some("http" | "https"));
    let Some(authority) = address.authority().filter(|_| scheme_ok) else {
        return Err(format!(
            "option address: {:?} must be an absolute http:// or https:// URL",
            o.address
        ));
    };
    let host = HeaderValue::from_str(authority.as_str())
        .map_err(|_| format!("option address: bad host in {:?}", o.address))?;
    let settings = transport_settings(o.tls.as_ref(), ctx.name)?;
    let carried = ctx.carry("forwardAuth", CarriedTransport::default);
    let transport = {
        let mut slot = carried.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(t) if *t.settings() == settings => t.clone(),
            _ => {
                let t = Arc::new(Transport::new(settings).map_err(|e| format!("option tls: {e}"))?);
                *slot = Some(t.clone());
                t
            }
        }
    };
    let response_headers = o
        .auth_response_headers
        .iter()
        .map(|h| crate::headers::header_name(h, "authResponseHeaders"))
        .collect::<Result<_, _>>()?;
    let response_headers_regex = if o.auth_response_headers_regex.is_empty() {
        None
    } else {
        Some(Regex::new(&o.auth_response_headers_regex).map_err(|e| {
            format!(
                "option authResponseHeadersRegex: {:?} is not a valid regular expression: {e}",
                o.auth_response_headers_regex
            )
        })?)
    };
    if !o.header_field.is_empty() {
        crate::headers::header_name(&o.header_field, "headerField")?;
    }
    let limit = |size: Option<i64>| size.and_then(|s| usize::try_from(s).ok());
    Ok(Arc::new(ForwardAuth {
        address,
        host,
        transport,
        policy: ForwardedPolicy::new(o.trust_forward_header, &o.auth_request_headers)?,
        response_headers,
        response_headers_regex,
        auth_cookies: o.add_auth_cookies_to_response,
        forward_body: o.forward_body.then(|| limit(o.max_body_size)),
        max_response_body: limit(o.max_response_body_size),
        preserve_location: o.preserve_location_header,
        preserve_method: o.preserve_request_method,
    }))
}

impl std::fmt::Debug for CarriedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CarriedTransport")
    }
}

fn transport_settings(tls: Option<&TlsOptions>, name: &str) -> Result<TransportSettings, String> {
    let tls = tls.map_or_else(TlsOptions::default, |t| TlsOptions {
        ca: t.ca.clone(),
        cert: t.cert.clone(),
        key: t.key.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
        ca_optional: t.ca_optional,
    });
    if tls.ca_optional.is_some() {
        tracing::warn!(
            middleware = name,
            "forwardAuth: tls.caOptional is deprecated and has no effect"
        );
    }
    if tls.cert.is_empty() != tls.key.is_empty() {
        return Err("option tls: both cert and key must be set".into());
    }
    Ok(TransportSettings {
        insecure_skip_verify: tls.insecure_skip_verify,
        root_cas: if tls.ca.is_empty() {
            Vec::new()
        } else {
            vec![tls.ca]
        },
        server_name: None,
        certificates: if tls.cert.is_empty() {
            Vec::new()
        } else {
            vec![(tls.cert, tls.key)]
        },
        max_idle_per_host: 100,
        dial_timeout: Some(AUTH_TIMEOUT),
        response_header_timeout: Some(AUTH_TIMEOUT),
        idle_conn_timeout: Some(Duration::from_secs(90)),
        read_idle_timeout: None,
        ping_timeout: Some(Duration::from_secs(15)),
        disable_http2: false,
        peer_cert_uri: None,
        use_hyper_client: false,
    })
}

impl Middleware for ForwardAuth {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            match self.authorize(request, ctx).await {
                Ok((request, cookies)) => {
                    let response = next.run(request).await;
                    self.add_cookies(response, &cookies)
                }
                Err(answer) => answer,
            }
        })
    }
}

impl ForwardAuth {
    /// The request to let through (and the authentication server's `Set-Cookie` values), or
    /// the answer to give the client instead.
    async fn authorize(
        &self,
        request: Request,
        ctx: &RequestContext<'_>,
    ) -> Result<(Request, Vec<HeaderValue>), Response> {
        let (mut parts, body) = request.into_parts();
        let (body, auth_body) = match self.forward_body {
            None => (body, Body::Empty),
            Some(limit) => {
                let bytes = read_body(body, limit).await?;
                (full_body(bytes.clone()), full_body(bytes))
            }
        };
        let method = if self.preserve_method {
            parts.method.clone()
        } else {
            Method::GET
        };
        let mut auth = http::Request::new(auth_body);
        *auth.method_mut() = method;
        *auth.uri_mut() = self.address.clone();
        *auth.headers_mut() = auth_request_headers(&self.policy, &parts, ctx);
        auth.headers_mut().insert(header::HOST, self.host.clone());

        let exchange = async {
            let response = self
                .transport
                .send(auth, false)
                .await
                .map_err(|e| e.to_string())?;
            let (head, body) = response.into_parts();
            let body = match self.max_response_body {
                Some(limit) => Limited::new(body, limit).collect().await,
                None => body.collect().await,
            }
            .map_err(|e| e.to_string())?
            .to_bytes();
            Ok::<_, String>((head, body))
        };
        let (head, auth_body) = match tokio::time::timeout(AUTH_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::debug!(address = %self.address, error = %e, "forwardAuth: calling the authentication server failed");
                return Err(empty(StatusCode::INTERNAL_SERVER_ERROR));
            }
            Err(_) => {
                tracing::debug!(address = %self.address, "forwardAuth: the authentication server did not answer in time");
                return Err(empty(StatusCode::INTERNAL_SERVER_ERROR));
            }
        };
        if !head.status.is_success() {
            tracing::debug!(address = %self.address, status = %head.status, "forwardAuth: access refused");
            return Err(self.refusal(head, auth_body));
        }
        self.copy_response_headers(&mut parts.headers, &head.headers);
        let cookies = head
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        Ok((Request::from_parts(parts, body), cookies))
    }

    /// The authentication server's own answer, for the client: its status, headers (less
    /// hop-by-hop ones) and body, with a relative `Location` made absolute unless
    /// `preserveLocationHeader`.
    fn refusal(&self, head: http::response::Parts, body: Bytes) -> Response {
        let mut response = Response::new(full_body(body));
        *response.status_mut() = head.status;
        let mut headers = head.headers;
        for name in [
            header::CONNECTION,
            HeaderName::from_static("keep-alive"),
            header::TE,
            header::TRAILER,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            header::CONTENT_LENGTH,
        ] {
            headers.remove(name);
        }
        if !self.preserve_location {
            if let Some(location) = headers.get(header::LOCATION) {
                if let Some(absolute) = resolve_location(&self.address, location) {
                    headers.insert(header::LOCATION, absolute);
                }
            }
        }
        *response.headers_mut() = headers;
        response
    }

    /// `authResponseHeaders` replace the request's headers of those names;
    /// `authResponseHeadersRegex` first removes every request header it matches, then copies
    /// every answer header it matches (names matched in Go's canonical form).
    fn copy_response_headers(&self, request: &mut HeaderMap, answer: &HeaderMap) {
        for name in &self.response_headers {
            request.remove(name);
            for value in answer.get_all(name) {
                request.append(name.clone(), value.clone());
            }
        }
        let Some(regex) = &self.response_headers_regex else {
            return;
        };
        let doomed: Vec<HeaderName> = request
            .keys()
            .filter(|name| regex.is_match(&canonical_name(name)))
            .cloned()
            .collect();
        for name in doomed {
            request.remove(&name);
        }
        for name in answer.keys() {
            if regex.is_match(&canonical_name(name)) {
                for value in answer.get_all(name) {
                    request.append(name.clone(), value.clone());
                }
            }
        }
    }

    /// The backend's cookies named in `addAuthCookiesToResponse` give way to the
    /// authentication server's cookies of those names.
    fn add_cookies(&self, mut response: Response, auth_cookies: &[HeaderValue]) -> Response {
        if auth_cookies.is_empty() || self.auth_cookies.is_empty() {
            return response;
        }
        let listed = |value: &HeaderValue| {
            cookie_name(value).is_some_and(|name| self.auth_cookies.iter().any(|c| c == name))
        };
        let headers = response.headers_mut();
        let kept: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter(|v| !listed(v))
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for value in kept
            .into_iter()
            .chain(auth_cookies.iter().filter(|v| listed(v)).cloned())
        {
            headers.append(header::SET_COOKIE, value);
        }
        response
    }
}

/// The request body, whole, for the authentication server and then the backend: more than
/// `limit` bytes is refused with 401 as in Traefik.
async fn read_body(body: Body, limit: Option<usize>) -> Result<Bytes, Response> {
    let collected = match limit {
        Some(limit) => Limited::new(body, limit).collect().await,
        None => body.collect().await,
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            tracing::debug!(?limit, "forwardAuth: request body too large");
            Err(empty(StatusCode::UNAUTHORIZED))
        }
        Err(e) => {
            tracing::debug!(error = %e, "forwardAuth: reading the request body failed");
            Err(empty(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// A `Location` relative to the authentication server's address, made absolute (Go's
/// `Response.Location`).
fn resolve_location(base: &Uri, location: &HeaderValue) -> Option<HeaderValue> {
    let text = location.to_str().ok()?;
    if text.is_empty() || text.contains("://") {
        return None;
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let absolute = if let Some(rest) = text.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if text.starts_with('/') {
        format!("{scheme}://{authority}{text}")
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{scheme}://{authority}{dir}/{text}")
    };
    HeaderValue::from_str(&absolute).ok()
}

fn cookie_name(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (name, _) = text.split_once('=')?;
    Some(name.trim())
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}
