//! `headers`: custom request and response headers, CORS (including answering preflight
//! requests), and the security headers of `unrolled/secure` that Traefik builds on.
//!
//! Traefik nests two handlers: CORS and custom headers outside, security inside. So a
//! preflight is answered before the security checks run, and on the way back the security
//! headers are set first and the custom response headers may then override them.

mod cors;
mod secure;

use std::collections::BTreeMap;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, HOST};
use serde::Deserialize;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use cors::Cors;
use secure::Secure;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Options {
    #[serde(default)]
    custom_request_headers: BTreeMap<String, String>,
    #[serde(default)]
    custom_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    access_control_allow_credentials: bool,
    #[serde(default)]
    access_control_allow_headers: Vec<String>,
    #[serde(default)]
    access_control_allow_methods: Vec<String>,
    #[serde(default)]
    access_control_allow_origin_list: Vec<String>,
    #[serde(default)]
    access_control_allow_origin_list_regex: Vec<String>,
    #[serde(default)]
    access_control_expose_headers: Vec<String>,
    #[serde(default)]
    access_control_max_age: i64,
    #[serde(default)]
    add_vary_header: bool,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    hosts_proxy_headers: Vec<String>,
    #[serde(default)]
    ssl_proxy_headers: BTreeMap<String, String>,
    #[serde(default)]
    sts_seconds: i64,
    #[serde(default)]
    sts_include_subdomains: bool,
    #[serde(default)]
    sts_preload: bool,
    #[serde(default, rename = "forceSTSHeader")]
    force_sts_header: bool,
    #[serde(default)]
    frame_deny: bool,
    #[serde(default)]
    custom_frame_options_value: String,
    #[serde(default)]
    content_type_nosniff: bool,
    #[serde(default)]
    browser_xss_filter: bool,
    #[serde(default, rename = "customBrowserXSSValue")]
    custom_browser_xss_value: String,
    #[serde(default)]
    content_security_policy: String,
    #[serde(default)]
    content_security_policy_report_only: String,
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    referrer_policy: String,
    #[serde(default)]
    permissions_policy: String,
    #[serde(default)]
    is_development: bool,
    /// Deprecated: used as `permissionsPolicy` when that is not set.
    #[serde(default)]
    feature_policy: Option<String>,
    /// Removed in Traefik v3 (accepted, logged, and ignored).
    #[serde(default)]
    ssl_redirect: Option<bool>,
    #[serde(default)]
    ssl_temporary_redirect: Option<bool>,
    #[serde(default)]
    ssl_host: Option<String>,
    #[serde(default)]
    ssl_force_host: Option<bool>,
}

/// A request extension asking the proxy not to append the client to `X-Forwarded-For` when
/// the request leaves: set by `headers` when `customRequestHeaders` empties that header, as
/// Traefik then sends none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuppressForwardedFor;

#[derive(Debug)]
pub(crate) struct Headers {
    /// `None` value: remove the header.
    request_headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// `X-Forwarded-For` is among the removed request headers.
    suppress_forwarded_for: bool,
    response_headers: Vec<(HeaderName, Option<HeaderValue>)>,
    cors: Option<Cors>,
    secure: Option<Secure>,
}

pub(crate) fn build(
    options: &serde_json::Value,
    name: &str,
) -> Result<Arc<dyn Middleware>, String> {
    let mut options: Options = crate::options::decode(options)?;
    apply_deprecations(&mut options, name);
    let cors = Cors::from_options(&options)?;
    let secure = Secure::from_options(&options)?;
    let request_headers = custom_headers(&options.custom_request_headers, "customRequestHeaders")?;
    let response_headers =
        custom_headers(&options.custom_response_headers, "customResponseHeaders")?;
    if cors.is_none()
        && secure.is_none()
        && request_headers.is_empty()
        && response_headers.is_empty()
    {
        return Err("headers configuration not valid: no option is set".into());
    }
    let suppress_forwarded_for = request_headers
        .iter()
        .any(|(name, value)| value.is_none() && name.as_str() == "x-forwarded-for");
    Ok(Arc::new(Headers {
        request_headers,
        suppress_forwarded_for,
        response_headers,
        cors,
        secure,
    }))
}

impl Middleware for Headers {
    fn handle<'a>(
        &'a self,
        mut request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        if let Some(cors) = &self.cors {
            if let Some(preflight) = cors.preflight(&request) {
                return Box::pin(async move { preflight });
            }
        }
        let headers = request.headers_mut();
        for (name, value) in &self.request_headers {
            match value {
                Some(value) => {
                    headers.insert(name.clone(), value.clone());
                }
                None => {
                    headers.remove(name);
                }
            }
        }
        if self.suppress_forwarded_for {
            request.extensions_mut().insert(SuppressForwardedFor);
        }
        // The response needs the request's Origin as the backend received it.
        let origin = self
            .cors
            .as_ref()
            .map(|_| request.headers().get(http::header::ORIGIN).cloned());
        // `None` inside: the host is refused, and the refusal still gets the custom and CORS
        // response headers (the security handler sits inside the custom-headers one).
        let secure_headers = self
            .secure
            .as_ref()
            .map(|secure| secure.check(&request, ctx));
        Box::pin(async move {
            let mut response = match &secure_headers {
                Some(None) => secure::bad_host(),
                _ => next.run(request).await,
            };
            let headers = response.headers_mut();
            if let Some(Some(secure_headers)) = secure_headers {
                for (name, value) in secure_headers {
                    headers.insert(name.clone(), value.clone());
                }
            }
            for (name, value) in &self.response_headers {
                match value {
                    Some(value) => {
                        headers.insert(name.clone(), value.clone());
                    }
                    None => {
                        headers.remove(name);
                    }
                }
            }
            if let (Some(cors), Some(origin)) = (&self.cors, origin) {
                cors.decorate(headers, origin.as_ref());
            }
            response
        })
    }
}

/// Traefik v3 still reads a few removed options: `featurePolicy` becomes `permissionsPolicy`,
/// the `ssl*` redirection options are ignored with an error in the log.
fn apply_deprecations(options: &mut Options, name: &str) {
    if let Some(policy) = options.feature_policy.take() {
        tracing::warn!(
            middleware = name,
            "headers: featurePolicy is deprecated, use permissionsPolicy"
        );
        if options.permissions_policy.is_empty() {
            options.permissions_policy = policy;
        }
    }
    let removed = [
        ("sslRedirect", options.ssl_redirect.is_some()),
        (
            "sslTemporaryRedirect",
            options.ssl_temporary_redirect.is_some(),
        ),
        ("sslHost", options.ssl_host.is_some()),
        ("sslForceHost", options.ssl_force_host.is_some()),
    ];
    for (option, set) in removed {
        if set {
            tracing::error!(
                middleware = name,
                "headers: {option} is no longer supported (use entry point redirection or redirectScheme / redirectRegex); ignored"
            );
        }
    }
}

/// Parses a custom header map. Setting `Host` sets the request's host (the proxy forwards the
/// `Host` header as the host); removing it does nothing, as in Go where the host is no header.
fn custom_headers(
    map: &BTreeMap<String, String>,
    option: &str,
) -> Result<Vec<(HeaderName, Option<HeaderValue>)>, String> {
    map.iter()
        .map(|(name, value)| {
            let name = header_name(name, option)?;
            let value = if value.is_empty() {
                None
            } else {
                Some(header_value(value, option)?)
            };
            Ok((name, value))
        })
        .filter(|entry| !matches!(entry, Ok((name, None)) if *name == HOST))
        .collect()
}

pub(crate) fn header_name(name: &str, option: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("option {option}: {name:?} is not a valid header name"))
}

pub(crate) fn header_value(value: &str, option: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value)
        .map_err(|_| format!("option {option}: {value:?} is not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::build;

    fn error(options: serde_json::Value) -> String {
        match build(&options, "test") {
            Ok(_) => panic!("{options} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn bad_options_are_named() {
        let e = error(serde_json::json!({"customRequestHeaders": {"Bad Name": "x"}}));
        assert!(e.contains("customRequestHeaders"), "{e}");
        let e = error(serde_json::json!({"customResponseHeaders": {"X-A": "a\nb"}}));
        assert!(e.contains("customResponseHeaders"), "{e}");
        let e = error(serde_json::json!({"accessControlAllowOriginListRegex": ["("]}));
        assert!(e.contains("accessControlAllowOriginListRegex"), "{e}");
        let e = error(serde_json::json!({"hostsProxyHeaders": ["a b"]}));
        assert!(e.contains("hostsProxyHeaders"), "{e}");
        let e = error(serde_json::json!({}));
        assert!(e.contains("not valid"), "{e}");
        assert!(build(&serde_json::json!({"frameDeny": true}), "test").is_ok());
    }
}
