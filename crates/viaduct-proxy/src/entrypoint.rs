//! Entry points as the request path sees them: static settings resolved once at start.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use viaduct_config::static_config::EntryPoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Largest `maxHeaderBytes` honoured, and the smallest: hyper's read buffer cannot be
/// smaller than 8 KiB.
const MIN_HEADER_BYTES: usize = 8 * 1024;

#[derive(Debug)]
pub struct EntryPointRuntime {
    pub name: String,
    /// Position in the snapshot's entry point list (no lookups by name per request).
    pub index: usize,
    pub address: SocketAddr,
    /// True for `:port` addresses: listen on every IPv4 and IPv6 address.
    pub all_interfaces: bool,
    pub protocol: Protocol,
    pub reuse_port: bool,
    pub trusted_ips: Vec<IpNet>,
    pub trust_all: bool,
    pub connection_headers: Vec<HeaderName>,
    pub not_append_x_forwarded_for: bool,
    pub add_x_forwarded_scheme_headers: bool,
    /// `readTimeout`: the whole request, head and body, from its first byte.
    pub read_timeout: Option<Duration>,
    /// `writeTimeout`: from the end of the request head to the end of the response.
    pub write_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub request_accept_grace_timeout: Duration,
    pub grace_timeout: Duration,
    pub max_header_bytes: usize,
    pub sanitize_path: bool,
    pub encode_query_semicolons: bool,
    /// `X-Forwarded-Server`: this machine's host name.
    pub hostname: HeaderValue,
    /// The port this entry point listens on, as a header value: most `Host` headers name it,
    /// and `X-Forwarded-Port` then shares this value instead of allocating its own.
    pub port_value: HeaderValue,
    /// Metrics and access log of this entry point (observes nothing by default).
    pub observer: viaduct_observe::EntryPointObserver,
    /// `proxyProtocol`: whose PROXY headers are read; `None` when the section is absent.
    pub proxy_protocol: Option<ProxyProtocolTrust>,
    /// `udp.timeout`: how long a UDP session lives without traffic.
    pub udp_timeout: Duration,
}

/// `entryPoints.<name>.proxyProtocol`.
#[derive(Debug, Clone, Default)]
pub struct ProxyProtocolTrust {
    pub trusted_ips: Vec<IpNet>,
    pub insecure: bool,
}

impl ProxyProtocolTrust {
    /// Whether a PROXY header from `peer` is believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.insecure
            || self
                .trusted_ips
                .iter()
                .any(|net| net.contains(&normalize(peer)))
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct ProxyProtocolOptions {
    #[serde(rename = "trustedIPs")]
    trusted_ips: Vec<String>,
    insecure: bool,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct UdpOptions {
    timeout: Option<viaduct_config::GoDuration>,
}

#[derive(Debug, thiserror::Error)]
pub enum EntryPointError {
    #[error("entry point {name}: invalid address {address:?}: {reason}")]
    Address {
        name: String,
        address: String,
        reason: String,
    },
    #[error("entry point {name}: invalid forwardedHeaders.trustedIPs entry {value:?}")]
    TrustedIp { name: String, value: String },
    #[error("entry point {name}: invalid {section}: {reason}")]
    Section {
        name: String,
        section: &'static str,
        reason: String,
    },
}

impl EntryPointRuntime {
    pub fn new(name: &str, index: usize, config: &EntryPoint) -> Result<Self, EntryPointError> {
        let (address, all_interfaces, protocol) = parse_address(name, &config.address)?;
        let mut trusted_ips = Vec::new();
        for value in &config.forwarded_headers.trusted_ips {
            trusted_ips.push(parse_net(value).ok_or_else(|| EntryPointError::TrustedIp {
                name: name.to_string(),
                value: value.clone(),
            })?);
        }
        let timeouts = &config.transport.responding_timeouts;
        let life = &config.transport.life_cycle;
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        Ok(EntryPointRuntime {
            name: name.to_string(),
            index,
            address,
            all_interfaces,
            protocol,
            reuse_port: config.reuse_port,
            trusted_ips,
            trust_all: config.forwarded_headers.insecure,
            connection_headers: config
                .forwarded_headers
                .connection
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.trim().as_bytes()).ok())
                .collect(),
            not_append_x_forwarded_for: config.forwarded_headers.not_append_x_forwarded_for,
            add_x_forwarded_scheme_headers: config.forwarded_headers.add_x_forwarded_scheme_headers,
            read_timeout: timeouts.read_timeout.positive(),
            write_timeout: timeouts.write_timeout.positive(),
            idle_timeout: timeouts.idle_timeout.positive(),
            request_accept_grace_timeout: life
                .request_accept_grace_timeout
                .positive()
                .unwrap_or_default(),
            grace_timeout: life.grace_time_out.positive().unwrap_or_default(),
            max_header_bytes: usize::try_from(config.http.max_header_bytes)
                .unwrap_or(0)
                .max(MIN_HEADER_BYTES),
            sanitize_path: config.http.sanitize_path,
            encode_query_semicolons: config.http.encode_query_semicolons,
            hostname: HeaderValue::from_str(&hostname)
                .unwrap_or(HeaderValue::from_static("viaduct")),
            port_value: HeaderValue::from(address.port()),
            observer: viaduct_observe::EntryPointObserver::default(),
            proxy_protocol: proxy_protocol(name, config.proxy_protocol.as_ref())?,
            udp_timeout: udp_timeout(name, config.udp.as_ref())?,
        })
    }

    /// Whether `X-Forwarded-*` headers from `peer` are kept.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trust_all
            || self
                .trusted_ips
                .iter()
                .any(|net| net.contains(&normalize(peer)))
    }
}

fn section<T: serde::de::DeserializeOwned + Default>(
    name: &str,
    section: &'static str,
    value: Option<&serde_json::Value>,
) -> Result<Option<T>, EntryPointError> {
    let Some(value) = value else { return Ok(None) };
    if value.is_null() {
        return Ok(Some(T::default()));
    }
    viaduct_config::decode_value(value.clone(), viaduct_config::Origin::Inline("entry point"))
        .map(Some)
        .map_err(|e| EntryPointError::Section {
            name: name.to_string(),
            section,
            reason: e.to_string(),
        })
}

fn proxy_protocol(
    name: &str,
    value: Option<&serde_json::Value>,
) -> Result<Option<ProxyProtocolTrust>, EntryPointError> {
    let Some(options) = section::<ProxyProtocolOptions>(name, "proxyProtocol", value)? else {
        return Ok(None);
    };
    let mut trusted_ips = Vec::new();
    for value in &options.trusted_ips {
        trusted_ips.push(parse_net(value).ok_or_else(|| EntryPointError::Section {
            name: name.to_string(),
            section: "proxyProtocol",
            reason: format!("invalid trustedIPs entry {value:?}"),
        })?);
    }
    Ok(Some(ProxyProtocolTrust {
        trusted_ips,
        insecure: options.insecure,
    }))
}

fn udp_timeout(name: &str, value: Option<&serde_json::Value>) -> Result<Duration, EntryPointError> {
    let options = section::<UdpOptions>(name, "udp", value)?.unwrap_or_default();
    Ok(options
        .timeout
        .and_then(|t| t.positive())
        .unwrap_or(viaduct_tcp::DEFAULT_UDP_TIMEOUT))
}

/// IPv4-mapped IPv6 peers (from dual-stack sockets) are compared as IPv4.
pub(crate) fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn parse_net(value: &str) -> Option<IpNet> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .ok()
        .or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `[host]:port[/tcp|/udp]`, as Traefik writes entry point addresses.
fn parse_address(name: &str, raw: &str) -> Result<(SocketAddr, bool, Protocol), EntryPointError> {
    let err = |reason: &str| EntryPointError::Address {
        name: name.to_string(),
        address: raw.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = raw.trim();
    let (hostport, protocol) = match trimmed.rsplit_once('/') {
        Some((hp, proto)) => match proto.to_ascii_lowercase().as_str() {
            "tcp" => (hp, Protocol::Tcp),
            "udp" => (hp, Protocol::Udp),
            _ => return Err(err("protocol must be tcp or udp")),
        },
        None => (trimmed, Protocol::Tcp),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| err("missing port"))?;
    let port: u16 = port.parse().map_err(|_| err("invalid port"))?;
    if host.is_empty() {
        return Ok((
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            true,
            protocol,
        ));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((SocketAddr::new(ip, port), false, protocol));
    }
    let resolved = (host, port)
        .to_socket_addrs()
        .map_err(|e| err(&format!("cannot resolve host: {e}")))?
        .next()
        .ok_or_else(|| err("host resolves to no address"))?;
    Ok((resolved, false, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let (a, all, p) = parse_address("web", ":80").unwrap();
        assert_eq!(a.port(), 80);
        assert!(all);
        assert_eq!(p, Protocol::Tcp);
        let (a, all, _) = parse_address("web", "127.0.0.1:8080/tcp").unwrap();
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        assert!(!all);
        let (a, _, _) = parse_address("web", "[::1]:8443").unwrap();
        assert_eq!(a, "[::1]:8443".parse().unwrap());
        let (_, _, p) = parse_address("dns", ":53/udp").unwrap();
        assert_eq!(p, Protocol::Udp);
        for bad in ["80", ":http", ":80/sctp", "127.0.0.1:99999"] {
            assert!(parse_address("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trust() {
        let ep = EntryPoint {
            address: ":80".into(),
            forwarded_headers: viaduct_config::static_config::ForwardedHeaders {
                trusted_ips: vec!["10.0.0.0/8".into(), "192.168.1.7".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        let rt = EntryPointRuntime::new("web", 0, &ep).unwrap();
        assert!(rt.trusts("10.1.2.3".parse().unwrap()));
        assert!(rt.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(rt.trusts("192.168.1.7".parse().unwrap()));
        assert!(!rt.trusts("192.168.1.8".parse().unwrap()));
    }
}
