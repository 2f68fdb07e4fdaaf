//! The request path's header work, exposed for the micro-benchmarks in `benches/headers.rs`.
//! Not an API: nothing outside the benchmarks uses it.

use std::net::IpAddr;

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderValue, HOST};
use http::{StatusCode, Version};

use crate::entrypoint::EntryPointRuntime;
use crate::forwarded::{self, ForwardFacts};
use crate::{hop, http1};

/// Parses one request head from `buf` (consuming it); true when a head was complete.
pub fn parse_request_head(buf: &mut BytesMut) -> bool {
    matches!(http1::head::parse(buf), Ok(Some(_)))
}

/// What the proxy does to a request's headers on its way through: hop-by-hop headers, the
/// forwarded headers of the entry point, then `X-Forwarded-For` when it leaves.
pub fn rewrite_request_headers(
    headers: &mut HeaderMap,
    ep: &EntryPointRuntime,
    peer: IpAddr,
    peer_value: &HeaderValue,
) {
    hop::remove_connection_listed(headers, forwarded::is_managed);
    hop::strip_hop_by_hop(headers, None);
    let host = headers.get(HOST).cloned();
    let facts = ForwardFacts {
        peer,
        peer_value,
        tls: false,
        websocket: false,
        host: host.as_ref(),
    };
    forwarded::rewrite(headers, ep, &facts);
    forwarded::append_forwarded_for(headers, peer_value);
}

/// Encodes a response head as the HTTP/1.1 server writes it.
pub fn encode_response_head(wbuf: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    http1::write::encode_head(wbuf, Version::HTTP_11, status, headers);
}
