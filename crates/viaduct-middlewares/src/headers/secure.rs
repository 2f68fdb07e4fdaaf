//! The security half of `headers`, as `unrolled/secure` does it for Traefik: an allowed-hosts
//! check on the request, and security headers set on the response.

use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;

use super::{header_name, header_value, Options};
use crate::chain::{Request, RequestContext, Response};

#[derive(Debug)]
pub(super) struct Secure {
    allowed_hosts: Vec<String>,
    hosts_proxy_headers: Vec<HeaderName>,
    ssl_proxy_headers: Vec<(HeaderName, String)>,
    /// Headers set on every response.
    always: Vec<(HeaderName, HeaderValue)>,
    /// Headers set only on responses to requests known to be HTTPS.
    ssl_only: Vec<(HeaderName, HeaderValue)>,
    /// `Strict-Transport-Security` goes on plain-HTTP answers too (`forceSTSHeader`).
    force_sts: bool,
    is_development: bool,
}

const PUBLIC_KEY_PINS: HeaderName = HeaderName::from_static("public-key-pins");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
const X_XSS_PROTECTION: HeaderName = HeaderName::from_static("x-xss-protection");

impl Secure {
    /// `None` when no security option is set.
    pub(super) fn from_options(o: &Options) -> Result<Option<Secure>, String> {
        let defined = !o.allowed_hosts.is_empty()
            || !o.hosts_proxy_headers.is_empty()
            || !o.ssl_proxy_headers.is_empty()
            || o.sts_seconds != 0
            || o.sts_include_subdomains
            || o.sts_preload
            || o.force_sts_header
            || o.frame_deny
            || !o.custom_frame_options_value.is_empty()
            || o.content_type_nosniff
            || o.browser_xss_filter
            || !o.custom_browser_xss_value.is_empty()
            || !o.content_security_policy.is_empty()
            || !o.content_security_policy_report_only.is_empty()
            || !o.public_key.is_empty()
            || !o.referrer_policy.is_empty()
            || !o.permissions_policy.is_empty()
            || o.is_development;
        if !defined {
            return Ok(None);
        }
        let mut always = Vec::new();
        let mut ssl_only = Vec::new();
        if o.sts_seconds != 0 && !o.is_development {
            let mut sts = format!("max-age={}", o.sts_seconds);
            if o.sts_include_subdomains {
                sts.push_str("; includeSubDomains");
            }
            if o.sts_preload {
                sts.push_str("; preload");
            }
            ssl_only.push((
                header::STRICT_TRANSPORT_SECURITY,
                header_value(&sts, "stsSeconds")?,
            ));
        }
        if !o.custom_frame_options_value.is_empty() {
            always.push((
                header::X_FRAME_OPTIONS,
                header_value(&o.custom_frame_options_value, "customFrameOptionsValue")?,
            ));
        } else if o.frame_deny {
            always.push((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
        }
        if o.content_type_nosniff {
            always.push((
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ));
        }
        if !o.custom_browser_xss_value.is_empty() {
            always.push((
                X_XSS_PROTECTION,
                header_value(&o.custom_browser_xss_value, "customBrowserXSSValue")?,
            ));
        } else if o.browser_xss_filter {
            always.push((X_XSS_PROTECTION, HeaderValue::from_static("1; mode=block")));
        }
        if !o.public_key.is_empty() && !o.is_development {
            // HPKP goes only over HTTPS, after STS.
            ssl_only.push((PUBLIC_KEY_PINS, header_value(&o.public_key, "publicKey")?));
        }
        let optional = [
            (
                header::CONTENT_SECURITY_POLICY,
                &o.content_security_policy,
                "contentSecurityPolicy",
            ),
            (
                header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
                &o.content_security_policy_report_only,
                "contentSecurityPolicyReportOnly",
            ),
            (
                header::REFERRER_POLICY,
                &o.referrer_policy,
                "referrerPolicy",
            ),
            (
                PERMISSIONS_POLICY,
                &o.permissions_policy,
                "permissionsPolicy",
            ),
        ];
        for (name, value, option) in optional {
            if !value.is_empty() {
                always.push((name, header_value(value, option)?));
            }
        }
        Ok(Some(Secure {
            allowed_hosts: o.allowed_hosts.clone(),
            hosts_proxy_headers: o
                .hosts_proxy_headers
                .iter()
                .map(|h| header_name(h, "hostsProxyHeaders"))
                .collect::<Result<_, _>>()?,
            ssl_proxy_headers: o
                .ssl_proxy_headers
                .iter()
                .map(|(k, v)| Ok((header_name(k, "sslProxyHeaders")?, v.clone())))
                .collect::<Result<_, String>>()?,
            always,
            ssl_only,
            force_sts: o.force_sts_header,
            is_development: o.is_development,
        }))
    }

    /// Checks the request's host: `None` when it is not allowed (answer [`bad_host`]), else
    /// the headers the response gets.
    pub(super) fn check<'s>(
        &'s self,
        request: &Request,
        ctx: &RequestContext<'_>,
    ) -> Option<impl Iterator<Item = &'s (HeaderName, HeaderValue)> + Send + 's> {
        if !self.allowed_hosts.is_empty() && !self.is_development && !self.host_allowed(request) {
            return None;
        }
        let ssl = ctx.tls || self.ssl_by_proxy_header(request);
        let ssl_only: &[_] = if ssl {
            &self.ssl_only
        } else if self.force_sts {
            // Only STS is forced; HPKP still needs HTTPS.
            let sts = self
                .ssl_only
                .iter()
                .position(|(name, _)| *name != header::STRICT_TRANSPORT_SECURITY)
                .unwrap_or(self.ssl_only.len());
            &self.ssl_only[..sts]
        } else {
            &[]
        };
        Some(self.always.iter().chain(ssl_only))
    }

    fn host_allowed(&self, request: &Request) -> bool {
        let headers = request.headers();
        let host = self
            .hosts_proxy_headers
            .iter()
            .find_map(|name| headers.get(name).filter(|v| !v.is_empty()))
            .or_else(|| headers.get(header::HOST));
        let host = host.map(HeaderValue::as_bytes).unwrap_or_default();
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(host))
    }

    fn ssl_by_proxy_header(&self, request: &Request) -> bool {
        let headers = request.headers();
        self.ssl_proxy_headers.iter().any(|(name, expected)| {
            let actual = headers
                .get(name)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            actual == expected.as_bytes()
        })
    }
}

/// `unrolled/secure`'s answer to a host that is not allowed.
pub(super) fn bad_host() -> Response {
    let mut response = crate::responses::status(StatusCode::INTERNAL_SERVER_ERROR);
    *response.body_mut() = viaduct_upstream::full_body("Bad Host\n");
    response
}
