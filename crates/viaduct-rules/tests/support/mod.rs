//! Builds request facts from URLs the way the proxy does, for rule tests.
#![allow(dead_code)]

use http::{HeaderMap, HeaderValue, Method, Uri};
use std::net::IpAddr;
use viaduct_rules::{
    canonical_host, parse_http, parse_http_with, routing_path, RequestFacts, RuleSyntax,
};

pub struct Req {
    pub host: String,
    pub path: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub ip: Option<IpAddr>,
}

/// A GET request for an absolute URL (authority as host) or an origin-form path (no host).
pub fn req(url: &str) -> Req {
    let uri: Uri = url.parse().unwrap();
    let headers = HeaderMap::new();
    let host = canonical_host(&uri, &headers).into_owned();
    Req {
        host,
        path: routing_path(uri.path()).unwrap().into_owned(),
        method: Method::GET,
        headers,
        query: uri.query().map(str::to_owned),
        ip: None,
    }
}

impl Req {
    pub fn host(mut self, host: &str) -> Req {
        self.host = host.to_owned();
        self
    }
    pub fn raw_path(mut self, raw: &str) -> Req {
        self.path = routing_path(raw).unwrap().into_owned();
        self
    }
    pub fn method(mut self, method: &str) -> Req {
        self.method = Method::from_bytes(method.as_bytes()).unwrap();
        self
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers
            .append(name, HeaderValue::from_str(value).unwrap());
        self
    }
    pub fn ip(mut self, ip: &str) -> Req {
        self.ip = Some(ip.parse().unwrap());
        self
    }
    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            host: &self.host,
            path: &self.path,
            method: &self.method,
            headers: &self.headers,
            query: self.query.as_deref(),
            client_ip: self.ip,
        }
    }
}

pub fn matches(rule: &str, r: &Req) -> bool {
    parse_http(rule)
        .unwrap_or_else(|e| panic!("{rule}: {e}"))
        .matches(&r.facts())
}

pub fn matches_v2(rule: &str, r: &Req) -> bool {
    parse_http_with(RuleSyntax::V2, rule)
        .unwrap_or_else(|e| panic!("{rule}: {e}"))
        .matches(&r.facts())
}

pub fn is_err(rule: &str) -> bool {
    parse_http(rule).is_err()
}
