//! The per-request header work: parsing a request head, rewriting the headers on the way
//! through (hop-by-hop, forwarded headers), encoding a response head.
//!
//!     cargo bench -p viaduct-proxy --bench headers

use std::hint::black_box;

use bytes::BytesMut;
use divan::Bencher;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use viaduct_config::static_config::EntryPoint;
use viaduct_proxy::bench_api;
use viaduct_proxy::EntryPointRuntime;

fn main() {
    divan::main();
}

/// A browser-like request head (11 header fields).
const BROWSER_HEAD: &[u8] = b"GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n\
Host: app.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: application/json, text/plain, */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/items\r\n\
Cookie: session=4f1a9c0e2b7d4e6f8a1b3c5d7e9f0a2b; theme=dark\r\n\
Connection: keep-alive\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Site: same-origin\r\n\r\n";

/// What `wrk` sends.
const MINIMAL_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: svc-0.example.com\r\n\r\n";

#[divan::bench(args = ["minimal", "browser"])]
fn parse_request_head(bencher: Bencher, kind: &str) {
    let head = if kind == "browser" {
        BROWSER_HEAD
    } else {
        MINIMAL_HEAD
    };
    bencher
        .with_inputs(|| BytesMut::from(head))
        .bench_local_refs(|buf| black_box(bench_api::parse_request_head(buf)));
}

fn browser_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in std::str::from_utf8(BROWSER_HEAD)
        .unwrap_or_default()
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
    {
        if let Some((name, value)) = line.split_once(": ") {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
    }
    headers.reserve(8);
    headers
}

#[divan::bench]
fn rewrite_request_headers(bencher: Bencher) {
    let ep = EntryPointRuntime::new(
        "web",
        0,
        &EntryPoint {
            address: ":80".into(),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("entry point: {e}"));
    let peer: std::net::IpAddr = [192, 0, 2, 10].into();
    let peer_value = HeaderValue::from_static("192.0.2.10");
    bencher
        .with_inputs(browser_headers)
        .bench_local_refs(|headers| {
            bench_api::rewrite_request_headers(headers, &ep, peer, &peer_value)
        });
}

#[divan::bench]
fn encode_response_head(bencher: Bencher) {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "application/json"),
        ("content-length", "1432"),
        ("cache-control", "no-cache"),
        ("date", "Sat, 28 Nov 2026 00:00:00 GMT"),
        ("server", "nginx"),
        ("vary", "Accept-Encoding"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let mut wbuf = Vec::with_capacity(1024);
    bencher.bench_local(|| {
        wbuf.clear();
        bench_api::encode_response_head(&mut wbuf, StatusCode::OK, black_box(&headers));
        black_box(wbuf.len())
    });
}
