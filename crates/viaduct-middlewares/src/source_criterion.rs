//! `sourceCriterion`: what `rateLimit` and `inFlightReq` count requests by (a client IP, a
//! request header or the host).

use std::net::IpAddr;

use http::header::{HeaderName, HOST};
use ipnet::IpNet;
use serde::Deserialize;

use crate::chain::{Request, RequestContext};

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IpStrategyOptions {
    #[serde(default)]
    depth: usize,
    #[serde(default, rename = "excludedIPs")]
    excluded_ips: Vec<String>,
    #[serde(default, rename = "ipv6Subnet")]
    ipv6_subnet: Option<u8>,
}

/// A prepared criterion: extracts a request's source key.
#[derive(Debug, Clone)]
pub(crate) enum SourceCriterion {
    /// The TCP peer's address.
    Peer {
        ipv6_subnet: Option<u8>,
    },
    /// The `depth`-th address from the right of `X-Forwarded-For` (empty when too few).
    Depth {
        depth: usize,
        ipv6_subnet: Option<u8>,
    },
    /// The first address from the right of `X-Forwarded-For` that is not excluded.
    Excluded {
        excluded: Vec<IpNet>,
        ipv6_subnet: Option<u8>,
    },
    Header(HeaderName),
    Host,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl SourceCriterion {
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
            return Self::ip_strategy(strategy);
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
            SourceCriterion::Peer { ipv6_subnet } => masked(ctx.peer.ip(), *ipv6_subnet),
            SourceCriterion::Depth { depth, ipv6_subnet } => {
                let xff = first_header(request, &X_FORWARDED_FOR);
                let parts: Vec<&str> = xff.split(',').collect();
                if parts.len() < *depth {
                    return String::new();
                }
                mask_text(parts[parts.len() - depth].trim(), *ipv6_subnet)
            }
            SourceCriterion::Excluded {
                excluded,
                ipv6_subnet,
            } => {
                let xff = first_header(request, &X_FORWARDED_FOR);
                for part in xff.rsplit(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let is_excluded = part
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| excluded.iter().any(|net| net.contains(&ip)));
                    if !is_excluded {
                        return mask_text(part, *ipv6_subnet);
                    }
                }
                String::new()
            }
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

    fn ip_strategy(options: &IpStrategyOptions) -> Result<Self, String> {
        if let Some(bits) = options.ipv6_subnet {
            if bits > 128 {
                return Err(format!(
                    "option sourceCriterion.ipStrategy.ipv6Subnet: {bits} is not a prefix length"
                ));
            }
        }
        let ipv6_subnet = options.ipv6_subnet;
        if options.depth > 0 {
            return Ok(SourceCriterion::Depth {
                depth: options.depth,
                ipv6_subnet,
            });
        }
        if options.excluded_ips.is_empty() {
            return Ok(SourceCriterion::Peer { ipv6_subnet });
        }
        let excluded = options
            .excluded_ips
            .iter()
            .map(|text| parse_net(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SourceCriterion::Excluded {
            excluded,
            ipv6_subnet,
        })
    }
}

fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("option sourceCriterion.ipStrategy.excludedIPs: {text:?} is not an IP or CIDR")
        })
}

/// Go's `Header.Get`: the first value only.
fn first_header<'r>(request: &'r Request, name: &HeaderName) -> &'r str {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn masked(ip: IpAddr, ipv6_subnet: Option<u8>) -> String {
    match (ip, ipv6_subnet) {
        (IpAddr::V6(v6), Some(bits)) => IpNet::new(IpAddr::V6(v6), bits)
            .map(|net| net.network().to_string())
            .unwrap_or_else(|_| ip.to_string()),
        _ => ip.to_string(),
    }
}

fn mask_text(text: &str, ipv6_subnet: Option<u8>) -> String {
    match (ipv6_subnet, text.parse::<IpAddr>()) {
        (Some(_), Ok(ip)) => masked(ip, ipv6_subnet),
        _ => text.to_string(),
    }
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
        let criterion =
            SourceCriterion::build(Some(&options), SourceCriterion::Peer { ipv6_subnet: None })
                .unwrap();
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
