//! `ipAllowList` (and its deprecated alias `ipWhiteList`): only clients whose address is in
//! `sourceRange` get through; the others get `rejectStatusCode` (403).

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::StatusCode;
use serde::Deserialize;
use viaduct_upstream::full_body;

use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::client_ip::{ClientIpStrategy, IpChecker, IpStrategyOptions};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    source_range: Vec<String>,
    #[serde(default)]
    ip_strategy: Option<IpStrategyOptions>,
    #[serde(default)]
    reject_status_code: u16,
}

#[derive(Debug)]
pub(crate) struct IpAllowList {
    allowed: IpChecker,
    strategy: ClientIpStrategy,
    reject: StatusCode,
}

/// The deprecated `ipWhiteList` never had `rejectStatusCode`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WhiteListOptions {
    #[serde(default)]
    source_range: Vec<String>,
    #[serde(default)]
    ip_strategy: Option<IpStrategyOptions>,
}

pub(crate) fn build(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    build_from(crate::options::decode(options)?)
}

pub(crate) fn build_white_list(options: &serde_json::Value) -> Result<Arc<dyn Middleware>, String> {
    let options: WhiteListOptions = crate::options::decode(options)?;
    build_from(Options {
        source_range: options.source_range,
        ip_strategy: options.ip_strategy,
        reject_status_code: 0,
    })
}

fn build_from(options: Options) -> Result<Arc<dyn Middleware>, String> {
    if options.source_range.is_empty() {
        return Err("option sourceRange: the list is empty".into());
    }
    let reject = match options.reject_status_code {
        0 => StatusCode::FORBIDDEN,
        code => StatusCode::from_u16(code)
            .ok()
            .filter(|s| s.canonical_reason().is_some())
            .ok_or_else(|| format!("option rejectStatusCode: {code} is not an HTTP status"))?,
    };
    let allowed =
        IpChecker::new(&options.source_range).map_err(|e| format!("option sourceRange: {e}"))?;
    let strategy = ClientIpStrategy::from_options(options.ip_strategy.as_ref())?;
    Ok(Arc::new(IpAllowList {
        allowed,
        strategy,
        reject,
    }))
}

impl Middleware for IpAllowList {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let client = self.strategy.client_ip(&request, ctx);
        if self.allowed.allows(client) {
            return next.run(request);
        }
        tracing::debug!(client = %client, router = ctx.router, "ipAllowList: rejected");
        let status = self.reject;
        Box::pin(async move { rejection(status) })
    }
}

/// Traefik writes the status text alone, without a newline.
fn rejection(status: StatusCode) -> Response {
    let mut response = Response::new(full_body(status.canonical_reason().unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::{build, build_white_list};

    #[test]
    fn bad_options_are_named() {
        let e = build(&serde_json::json!({"sourceRange": ["10.0.0.0/40"]})).unwrap_err();
        assert!(
            e.contains("sourceRange") && e.contains("10.0.0.0/40"),
            "{e}"
        );
        let e = build(&serde_json::json!({"sourceRange": []})).unwrap_err();
        assert!(e.contains("sourceRange"), "{e}");
        let e = build(&serde_json::json!({"sourceRange": ["::1"], "rejectStatusCode": 999}))
            .unwrap_err();
        assert!(e.contains("rejectStatusCode"), "{e}");
        let e =
            build(&serde_json::json!({"sourceRange": ["::1"], "ipStrategy": {"ipv6Subnet": 129}}))
                .unwrap_err();
        assert!(e.contains("ipv6Subnet"), "{e}");
        let options = serde_json::json!({"sourceRange": ["::1"], "rejectStatusCode": 404});
        assert!(
            build_white_list(&options).is_err(),
            "ipWhiteList has no rejectStatusCode"
        );
    }
}
