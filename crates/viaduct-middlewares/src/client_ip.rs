//! Who the client is, as Traefik's `ipStrategy` decides it, and Traefik's IP checker.
//!
//! Shared by every middleware with an `ipStrategy` option (`ipAllowList`, and
//! `sourceCriterion.ipStrategy` of `rateLimit` and `inFlightReq`): decode the option as
//! [`IpStrategyOptions`], turn it into a [`ClientIpStrategy`] once at build time with
//! [`ClientIpStrategy::from_options`], then call [`ClientIpStrategy::client_ip`] per request.
//!
//! `X-Forwarded-For` is read as it stands when the middleware runs: the proxy appends the
//! TCP peer only when the request leaves, as Traefik does, so `depth: 1` is the last address
//! the client (or the proxy in front) put there, not the peer.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use http::header::HeaderValue;
use ipnet::IpNet;
use serde::Deserialize;

use crate::chain::{Request, RequestContext};

/// The `ipStrategy` option.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IpStrategyOptions {
    /// Take the `depth`-th address of `X-Forwarded-For` from the right (1 = the last).
    #[serde(default)]
    pub depth: i64,
    /// Take the right-most `X-Forwarded-For` address not in these (ignored when `depth` is set).
    #[serde(default, rename = "excludedIPs")]
    pub excluded_ips: Vec<String>,
    /// Masks an IPv6 client address to this prefix length (a /64 is one client).
    #[serde(default)]
    pub ipv6_subnet: Option<i64>,
}

/// How the client's address is found. Without an `ipStrategy` (or an empty one): the TCP peer.
#[derive(Debug, Clone)]
pub(crate) struct ClientIpStrategy {
    source: Source,
    ipv6_subnet: Option<u8>,
}

#[derive(Debug, Clone)]
enum Source {
    Peer,
    Depth(usize),
    Excluding(IpChecker),
}

/// The client's address as the strategy found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientIp<'r> {
    Ip(IpAddr),
    /// An `X-Forwarded-For` entry that is no IP address (kept as text, as Traefik does).
    Text(&'r str),
    /// `X-Forwarded-For` has too few entries (or none outside the excluded ones).
    Missing,
}

/// A list of addresses and networks (`sourceRange`, `excludedIPs`).
#[derive(Debug, Clone)]
pub(crate) struct IpChecker {
    addresses: Vec<IpAddr>,
    networks: Vec<IpNet>,
}

impl ClientIpStrategy {
    /// The TCP peer, unmasked (what no `ipStrategy` means).
    pub(crate) fn peer() -> Self {
        ClientIpStrategy {
            source: Source::Peer,
            ipv6_subnet: None,
        }
    }

    /// The strategy for `options` (`None`: the TCP peer). The error names the bad option.
    pub(crate) fn from_options(options: Option<&IpStrategyOptions>) -> Result<Self, String> {
        let Some(options) = options else {
            return Ok(ClientIpStrategy {
                source: Source::Peer,
                ipv6_subnet: None,
            });
        };
        let ipv6_subnet = match options.ipv6_subnet {
            None => None,
            Some(bits @ 0..=128) => u8::try_from(bits).ok(),
            Some(bits) => {
                return Err(format!(
                    "option ipStrategy.ipv6Subnet: {bits} is not a prefix length (0 to 128)"
                ))
            }
        };
        let source = if options.depth > 0 {
            Source::Depth(usize::try_from(options.depth).unwrap_or(usize::MAX))
        } else if !options.excluded_ips.is_empty() {
            Source::Excluding(
                IpChecker::new(&options.excluded_ips)
                    .map_err(|e| format!("option ipStrategy.excludedIPs: {e}"))?,
            )
        } else {
            Source::Peer
        };
        Ok(ClientIpStrategy {
            source,
            ipv6_subnet,
        })
    }

    /// The client's address for `request`. Allocates nothing.
    pub(crate) fn client_ip<'r>(
        &self,
        request: &'r Request,
        ctx: &RequestContext<'_>,
    ) -> ClientIp<'r> {
        let found = match &self.source {
            Source::Peer => ClientIp::Ip(ctx.peer.ip().to_canonical()),
            Source::Depth(depth) => {
                let entries = forwarded_for(request);
                let count = entries.split(',').count();
                match count.checked_sub(*depth) {
                    Some(index) => entry(entries.split(',').nth(index).unwrap_or_default()),
                    None => ClientIp::Missing,
                }
            }
            Source::Excluding(excluded) => forwarded_for(request)
                .rsplit(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .find(|e| !excluded.contains_text(e))
                .map_or(ClientIp::Missing, entry),
        };
        match (found, self.ipv6_subnet) {
            (ClientIp::Ip(IpAddr::V6(v6)), Some(bits)) => {
                ClientIp::Ip(IpAddr::V6(mask_v6(v6, bits)))
            }
            (found, _) => found,
        }
    }
}

impl ClientIp<'_> {
    /// The address as a key or log field (Traefik's string form).
    pub(crate) fn to_key(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ClientIp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIp::Ip(ip) => ip.fmt(f),
            ClientIp::Text(text) => f.write_str(text),
            ClientIp::Missing => Ok(()),
        }
    }
}

impl IpChecker {
    /// Each entry an IP address or a CIDR network. The error names the bad entry.
    pub(crate) fn new(entries: &[String]) -> Result<IpChecker, String> {
        if entries.is_empty() {
            return Err("no IP address or range given".into());
        }
        let mut checker = IpChecker {
            addresses: Vec::new(),
            networks: Vec::new(),
        };
        for entry in entries {
            let entry = entry.trim();
            if let Ok(ip) = entry.parse::<IpAddr>() {
                checker.addresses.push(ip.to_canonical());
            } else if let Ok(net) = entry.parse::<IpNet>() {
                checker.networks.push(canonical_net(net));
            } else {
                return Err(format!(
                    "{entry:?} is neither an IP address nor a CIDR range"
                ));
            }
        }
        Ok(checker)
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.addresses.contains(&ip) || self.networks.iter().any(|n| n.contains(&ip))
    }

    /// Whether the client is in the list; an address with a port counts by its address, and
    /// anything that is not an address is not in it.
    pub(crate) fn allows(&self, client: ClientIp<'_>) -> bool {
        match client {
            ClientIp::Ip(ip) => self.contains(ip),
            ClientIp::Text(text) => strip_port(text)
                .and_then(|host| host.parse().ok())
                .is_some_and(|ip| self.contains(ip)),
            ClientIp::Missing => false,
        }
    }

    fn contains_text(&self, text: &str) -> bool {
        text.parse().is_ok_and(|ip| self.contains(ip))
    }
}

/// The first `X-Forwarded-For` field (Go's `Header.Get`), or "".
fn forwarded_for(request: &Request) -> &str {
    request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .unwrap_or_default()
}

fn entry(text: &str) -> ClientIp<'_> {
    let text = text.trim();
    match text.parse::<IpAddr>() {
        Ok(ip) => ClientIp::Ip(ip.to_canonical()),
        Err(_) => ClientIp::Text(text),
    }
}

/// `host` of `host:port` or `[host]:port`; the text itself when it has no port.
fn strip_port(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']').map(|(host, _)| host);
    }
    match text.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => Some(host),
        _ => Some(text),
    }
}

fn mask_v6(ip: Ipv6Addr, bits: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
    Ipv6Addr::from(u128::from(ip) & mask)
}

/// An IPv4-mapped IPv6 network as the IPv4 network it is (Go compares them as equal).
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other.trunc(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ipv6_to_the_subnet() {
        let ip: Ipv6Addr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(
            mask_v6(ip, 64),
            "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(mask_v6(ip, 0), Ipv6Addr::UNSPECIFIED);
        assert_eq!(mask_v6(ip, 128), ip);
    }

    #[test]
    fn checker_takes_addresses_and_ranges() {
        let checker = IpChecker::new(&["10.0.0.0/8".into(), "::ffff:192.0.2.1".into()]).unwrap();
        assert!(checker.contains("10.1.2.3".parse().unwrap()));
        assert!(checker.contains("192.0.2.1".parse().unwrap()));
        assert!(checker.allows(ClientIp::Text("10.0.0.1:1234")));
        assert!(!checker.allows(ClientIp::Text("nonsense")));
        assert!(!checker.allows(ClientIp::Missing));
        assert!(IpChecker::new(&["10.0.0.0/33".into()]).is_err());
    }
}
