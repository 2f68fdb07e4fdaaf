//! Canonical host, routing path, path sanitisation and query decoding.

#![allow(clippy::unwrap_used)]

mod support;

use http::{HeaderMap, HeaderValue, Uri};
use std::borrow::Cow;
use support::{matches, req};
use viaduct_rules::{canonical_host, routing_path, sanitize_path};

fn host_of(uri: &str, header: Option<&'static str>) -> String {
    let uri: Uri = uri.parse().unwrap();
    let mut headers = HeaderMap::new();
    if let Some(h) = header {
        headers.insert("host", HeaderValue::from_static(h));
    }
    canonical_host(&uri, &headers).into_owned()
}

#[test]
fn canonical_host_rules() {
    assert_eq!(host_of("/", Some("Example.COM:8080")), "example.com");
    assert_eq!(host_of("/", Some("example.com.")), "example.com");
    assert_eq!(host_of("/", Some(" example.com ")), "example.com");
    assert_eq!(host_of("/", Some("[::1]:8080")), "::1");
    assert_eq!(host_of("/", Some("[::1]")), "::1");
    assert_eq!(host_of("/", Some("10::10")), "10::10");
    assert_eq!(host_of("/", None), "");
    assert_eq!(
        host_of("http://user@Example.com:81/x", Some("other")),
        "example.com"
    );
    assert_eq!(host_of("http://[fe80::1]:81/x", None), "fe80::1");
}

#[test]
fn canonical_host_borrows_when_unchanged() {
    let uri: Uri = "/".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.com:80"));
    assert!(matches!(
        canonical_host(&uri, &headers),
        Cow::Borrowed("example.com")
    ));
}

#[test]
fn routing_path_keeps_reserved_escapes() {
    assert_eq!(routing_path("/a%20b%41").unwrap(), "/a bA");
    assert_eq!(routing_path("/a%2fb%3a%25").unwrap(), "/a%2Fb%3A%25");
    for reserved in [
        "%3A", "%2F", "%3F", "%23", "%5B", "%5D", "%40", "%21", "%24", "%26", "%27", "%28", "%29",
        "%2A", "%2B", "%2C", "%3B", "%3D", "%25",
    ] {
        assert_eq!(
            routing_path(&format!("/{reserved}")).unwrap(),
            format!("/{reserved}")
        );
    }
    assert_eq!(routing_path("/%7Bx%7d").unwrap(), "/{x}");
    assert_eq!(routing_path("/caf%C3%A9").unwrap(), "/café");
    assert_eq!(
        routing_path("/%FF").unwrap(),
        "/%FF",
        "invalid UTF-8 stays encoded"
    );
    assert!(matches!(
        routing_path("/plain"),
        Ok(Cow::Borrowed("/plain"))
    ));
}

#[test]
fn routing_path_rejects_malformed_escapes() {
    for bad in ["/%", "/%2", "/%zz", "/a%g1"] {
        assert!(routing_path(bad).is_err(), "{bad}");
    }
    assert_eq!(routing_path("/a%g1").unwrap_err().pos, 2);
}

#[test]
fn sanitize_path_cleans_like_go_and_keeps_trailing_slash() {
    for (input, expected) in [
        ("/./foo/../bar//", "/bar/"),
        ("/", "/"),
        ("//", "/"),
        ("/a/b/../../..", "/"),
        ("/../a", "/a"),
        ("/a/./b/.", "/a/b"),
        ("/a/b/", "/a/b/"),
        ("/a//b", "/a/b"),
        ("/a/..", "/"),
        ("/a/../", "/"),
        ("/..a/b..", "/..a/b.."),
        ("*", "*"),
    ] {
        assert_eq!(sanitize_path(input), expected, "{input}");
    }
    assert!(matches!(sanitize_path("/clean/path/"), Cow::Borrowed(_)));
}

#[test]
fn query_parsing_follows_go() {
    assert!(matches("Query(`a b`, `c d`)", &req("/?a+b=c%20d")));
    assert!(matches("Query(`k`, `v`)", &req("/?bad=%zz&k=v")));
    assert!(
        !matches("Query(`k`, `v`)", &req("/?k=v;x=y")),
        "pairs with `;` are dropped"
    );
    assert!(matches("Query(`k`)", &req("/?k=")));
    assert!(matches("Query(`k`)", &req("/?&&k&")));
    assert!(matches("QueryRegexp(`k`)", &req("/?k")));
}
