//! `sourceCriterion`: what `rateLimit` and `inFlightReq` count requests by (a client IP, a
//! request header or the host).

use http::header::{HeaderName, HOST};
use serde::Deserialize;

use crate::chain::{Request, RequestContext};
use crate::client_ip::{ClientIpStrategy, IpStrategyOptions};

/// The options as configured (`sourceCriterion: {...}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SourceCriterionOptions {
    #[serde(default)]
    ip_strategy: Option<IpStrategyOptions>,
    #[serde(default)]
    request_header_name: String,
    #[serde(default)]
    request_host: bool,
}

/// A prepared criterion: extracts a request's source key.
#[derive(Debug, Clone)]
pub(crate) enum SourceCriterion {
    /// The client's address, found as `ipAllowList` finds it.
    Ip(ClientIpStrategy),
    Header(HeaderName),
    Host,
}

impl SourceCriterion {
    /// The TCP peer's address.
    pub fn peer() -> Self {
        SourceCriterion::Ip(ClientIpStrategy::peer())
    }

    /// Traefik's order: an IP strategy wins, then a header, then the host; nothing set
    /// means `default` (the peer address for `rateLimit`, the host for `inFlightReq`).
    pub fn build(
        options: Option<&SourceCriterionOptions>,
        default: SourceCriterion,
    ) -> Result<Self, String> {
        let Some(options) = options else {
            return Ok(default);
        };
        if let Some(strategy) = &options.ip_strategy {
            return ClientIpStrategy::from_options(Some(strategy))
                .map(SourceCriterion::Ip)
                .map_err(|e| e.replace("option ipStrategy", "option sourceCriterion.ipStrategy"));
        }
        if !options.request_header_name.is_empty() {
            let name =
                HeaderName::try_from(options.request_header_name.as_str()).map_err(|_| {
                    format!(
                        "option sourceCriterion.requestHeaderName: {:?} is not a header name",
                        options.request_header_name
                    )
                })?;
            return Ok(SourceCriterion::Header(name));
        }
        if options.request_host {
            return Ok(SourceCriterion::Host);
        }
        Ok(default)
    }

    /// The key requests are counted under. Traefik counts requests without the header (or
    /// with too short an `X-Forwarded-For`) together under the empty key.
    pub fn source(&self, request: &Request, ctx: &RequestContext<'_>) -> String {
        match self {
            SourceCriterion::Ip(strategy) => strategy.client_ip(request, ctx).to_key(),
            SourceCriterion::Header(name) => first_header(request, name).to_string(),
            SourceCriterion::Host => request
                .headers()
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| request.uri().authority().map(|a| a.to_string()))
                .unwrap_or_default(),
        }
    }
}

/// Go's `Header.Get`: the first value only.
fn first_header<'r>(request: &'r Request, name: &HeaderName) -> &'r str {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{BoxFuture, Forwarder, Response};
    use viaduct_upstream::{Body, ServiceNode};

    struct NoForwarding;
    impl Forwarder for NoForwarding {
        fn forward<'a>(&'a self, _: Request, _: &'a ServiceNode) -> BoxFuture<'a, Response> {
            Box::pin(async { Response::new(Body::Empty) })
        }
    }

    fn source(options: serde_json::Value, headers: &[(&str, &str)]) -> String {
        let options: SourceCriterionOptions = crate::options::decode(&options).unwrap();
        let criterion = SourceCriterion::build(Some(&options), SourceCriterion::peer()).unwrap();
        let mut request = Request::new(Body::Empty);
        for (name, value) in headers {
            request
                .headers_mut()
                .append(HeaderName::try_from(*name).unwrap(), value.parse().unwrap());
        }
        let ctx = RequestContext {
            peer: "[2001:db8::1234]:4000".parse().unwrap(),
            tls: false,
            client_certificates: None,
            entry_point: "web",
            router: "r",
            forwarder: &NoForwarding,
        };
        criterion.source(&request, &ctx)
    }

    #[test]
    fn the_sources_traefik_counts_by() {
        let xff = [("x-forwarded-for", "1.1.1.1, 10.0.0.1, 10.0.0.2")];
        assert_eq!(source(serde_json::json!({}), &xff), "2001:db8::1234");
        assert_eq!(
            source(serde_json::json!({"ipStrategy": {"ipv6Subnet": 64}}), &[]),
            "2001:db8::"
        );
        assert_eq!(
            source(serde_json::json!({"ipStrategy": {"depth": 2}}), &xff),
            "10.0.0.1"
        );
        assert_eq!(
            source(serde_json::json!({"ipStrategy": {"depth": 4}}), &xff),
            "",
            "too few addresses"
        );
        assert_eq!(
            source(
                serde_json::json!({"ipStrategy": {"excludedIPs": ["10.0.0.0/8"]}}),
                &xff
            ),
            "1.1.1.1"
        );
        assert_eq!(
            source(
                serde_json::json!({"requestHeaderName": "X-Key"}),
                &[("x-key", "k1")]
            ),
            "k1"
        );
        assert_eq!(
            source(
                serde_json::json!({"requestHost": true}),
                &[("host", "a.test")]
            ),
            "a.test"
        );
        assert_eq!(
            source(
                serde_json::json!({"requestHeaderName": "X-Key", "ipStrategy": {"depth": 1}}),
                &xff
            ),
            "10.0.0.2",
            "an IP strategy wins"
        );
    }
}
