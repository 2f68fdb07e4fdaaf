//! The PROXY protocol (HAProxy's v1 text and v2 binary headers): parsed on entry points whose
//! senders are trusted, and written towards backends whose transport asks for it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// What a PROXY header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The connection was relayed for `source`, which connected to `destination`.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// v1 `UNKNOWN`, v2 `LOCAL` or a non-IP family: the sender's own connection (health
    /// checks); the peer address stays the socket's.
    Local,
}

/// The result of looking at the first bytes of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes do not start a PROXY header.
    NotProxy,
    /// They may start one: more bytes are needed.
    Incomplete,
    /// A whole header, `consumed` bytes long (v2 TLVs included).
    Header {
        header: ProxyHeader,
        consumed: usize,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyProtocolError {
    #[error("PROXY v1 header: {0}")]
    V1(&'static str),
    #[error("PROXY v2 header: {0}")]
    V2(&'static str),
    #[error("PROXY header from {peer}, which is not in proxyProtocol.trustedIPs")]
    Untrusted { peer: IpAddr },
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line, CRLF included (the specification's bound).
const V1_MAX: usize = 107;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V2_FIXED: usize = 16;

/// Parses a PROXY header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    if starts_like(buf, V1_PREFIX) {
        return parse_v1(buf);
    }
    if starts_like(buf, V2_SIGNATURE) {
        return parse_v2(buf);
    }
    Ok(Parsed::NotProxy)
}

/// The v1 line for a connection from `source` to `destination` (`TCP6` when either is IPv6).
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// The v2 header (command PROXY, stream transport, no TLVs).
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    let mut out = Vec::with_capacity(V2_FIXED + 36);
    out.extend_from_slice(V2_SIGNATURE);
    out.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&to_v6(s).octets());
            out.extend_from_slice(&to_v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

/// Reads a PROXY header off `stream` if one is there, consuming exactly its bytes and nothing
/// after it, so the stream can be handed on untouched. Waits at most `limit` for the client to
/// say enough; a client that stays silent is taken as sending no header.
pub async fn read_header(
    stream: &mut TcpStream,
    limit: Duration,
) -> Result<Option<ProxyHeader>, ProxyProtocolError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; V1_MAX];
    let mut seen = 0;
    // Peeking returns at once while any byte is buffered: when the header is split across
    // segments, back off instead of spinning until the rest arrives.
    let mut backoff = Duration::from_millis(1);
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(read) => read?,
            Err(_) => return Ok(None),
        };
        if n == 0 {
            return Err(ProxyProtocolError::Io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        match parse(&buf[..n])? {
            Parsed::NotProxy => return Ok(None),
            Parsed::Header { header, consumed } => {
                let mut sink = vec![0u8; consumed];
                stream.read_exact(&mut sink).await?;
                return Ok(Some(header));
            }
            Parsed::Incomplete => {
                if n == seen {
                    if tokio::time::Instant::now() + backoff > deadline {
                        return Ok(None);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                seen = n;
            }
        }
    }
}

/// Whether `buf` and `prefix` agree on their common length (an empty buffer is undecided).
fn starts_like(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf[..n] == prefix[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(ProxyProtocolError::V1("no CRLF within 107 bytes"));
        }
        return Ok(Parsed::Incomplete);
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyProtocolError::V1("not ASCII"))?;
    let mut fields = line.split(' ').skip(1);
    let family = fields.next().unwrap_or("");
    let consumed = end + 2;
    if family == "UNKNOWN" {
        return Ok(Parsed::Header {
            header: ProxyHeader::Local,
            consumed,
        });
    }
    let rest: Vec<&str> = fields.collect();
    let [source, destination, source_port, destination_port] = rest[..] else {
        return Err(ProxyProtocolError::V1("expected four address fields"));
    };
    let ip = |text: &str| -> Result<IpAddr, ProxyProtocolError> {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| ProxyProtocolError::V1("invalid address"))?;
        match (family, ip) {
            ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
            ("TCP4" | "TCP6", _) => Err(ProxyProtocolError::V1("address family mismatch")),
            _ => Err(ProxyProtocolError::V1("unknown protocol family")),
        }
    };
    let port = |text: &str| -> Result<u16, ProxyProtocolError> {
        // Leading zeros are forbidden by the specification.
        if text.len() > 1 && text.starts_with('0') {
            return Err(ProxyProtocolError::V1("invalid port"));
        }
        text.parse()
            .map_err(|_| ProxyProtocolError::V1("invalid port"))
    };
    Ok(Parsed::Header {
        header: ProxyHeader::Proxied {
            source: SocketAddr::new(ip(source)?, port(source_port)?),
            destination: SocketAddr::new(ip(destination)?, port(destination_port)?),
        },
        consumed,
    })
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    if buf.len() < V2_FIXED {
        return Ok(Parsed::Incomplete);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyProtocolError::V2("unsupported version"));
    }
    let length = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let consumed = V2_FIXED + length;
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyProtocolError::V2("unknown command")),
    };
    let family = buf[13] >> 4;
    let needed = match family {
        1 => 12,
        2 => 36,
        _ => 0,
    };
    if length < needed {
        return Err(ProxyProtocolError::V2("address block too short"));
    }
    if local || needed == 0 {
        return Ok(Parsed::Header {
            header: ProxyHeader::Local,
            consumed,
        });
    }
    if buf.len() < V2_FIXED + needed {
        return Ok(Parsed::Incomplete);
    }
    let a = &buf[V2_FIXED..V2_FIXED + needed];
    let (source, destination, ports) = if family == 1 {
        let s = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
        let d = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
        (IpAddr::V4(s), IpAddr::V4(d), &a[8..12])
    } else {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&a[..16]);
        d.copy_from_slice(&a[16..32]);
        (
            IpAddr::V6(Ipv6Addr::from(s)),
            IpAddr::V6(Ipv6Addr::from(d)),
            &a[32..36],
        )
    };
    Ok(Parsed::Header {
        header: ProxyHeader::Proxied {
            source: SocketAddr::new(source, u16::from_be_bytes([ports[0], ports[1]])),
            destination: SocketAddr::new(destination, u16::from_be_bytes([ports[2], ports[3]])),
        },
        consumed,
    })
}

/// Both addresses in one family, as both header versions require.
fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let source = SocketAddr::new(source.ip().to_canonical(), source.port());
    let destination = SocketAddr::new(destination.ip().to_canonical(), destination.port());
    if source.is_ipv4() == destination.is_ipv4() {
        return (source, destination);
    }
    let v6 = |a: SocketAddr| SocketAddr::new(IpAddr::V6(to_v6(a.ip())), a.port());
    (v6(source), v6(destination))
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_round_trip() {
        let bytes = encode_v1(addr("10.1.2.3:4567"), addr("10.0.0.1:443"));
        assert_eq!(bytes, b"PROXY TCP4 10.1.2.3 10.0.0.1 4567 443\r\n");
        let mut with_payload = bytes.clone();
        with_payload.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse(&with_payload).unwrap(),
            Parsed::Header {
                header: ProxyHeader::Proxied {
                    source: addr("10.1.2.3:4567"),
                    destination: addr("10.0.0.1:443")
                },
                consumed: bytes.len()
            }
        );
        let v6 = encode_v1(addr("[2001:db8::1]:1"), addr("10.0.0.1:2"));
        assert_eq!(v6, b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 2\r\n");
    }

    #[test]
    fn v1_edge_cases() {
        assert_eq!(parse(b"PRO").unwrap(), Parsed::Incomplete);
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4").unwrap(), Parsed::Incomplete);
        assert_eq!(parse(b"GET / HTTP/1.1").unwrap(), Parsed::NotProxy);
        assert_eq!(parse(b"\x16\x03\x01").unwrap(), Parsed::NotProxy);
        assert!(matches!(
            parse(b"PROXY UNKNOWN\r\n").unwrap(),
            Parsed::Header {
                header: ProxyHeader::Local,
                consumed: 15
            }
        ));
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"[..],
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            &[b'P', b'R', b'O', b'X', b'Y', b' '].repeat(20),
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn v2_round_trip() {
        for (s, d) in [
            ("192.0.2.1:1000", "198.51.100.2:443"),
            ("[2001:db8::1]:1000", "[2001:db8::2]:443"),
        ] {
            let bytes = encode_v2(addr(s), addr(d));
            assert_eq!(&bytes[..12], V2_SIGNATURE);
            assert_eq!(
                parse(&bytes).unwrap(),
                Parsed::Header {
                    header: ProxyHeader::Proxied {
                        source: addr(s),
                        destination: addr(d)
                    },
                    consumed: bytes.len()
                }
            );
            assert_eq!(parse(&bytes[..20]).unwrap(), Parsed::Incomplete);
        }
    }

    #[test]
    fn v2_local_and_tlvs() {
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(
            parse(&local).unwrap(),
            Parsed::Header {
                header: ProxyHeader::Local,
                consumed: 16
            }
        );
        // A TLV after the addresses is skipped with the header.
        let mut with_tlv = encode_v2(addr("1.2.3.4:5"), addr("6.7.8.9:10"));
        with_tlv[15] += 4;
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x01, 0xAA]);
        assert!(matches!(
            parse(&with_tlv).unwrap(),
            Parsed::Header { consumed: 32, .. }
        ));
        let mut bad = local.clone();
        bad[12] = 0x31;
        assert!(parse(&bad).is_err());
    }
}
