use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::checksum::Checksum;
use crate::echo::EchoReport;
use crate::error::TestkitError;
use crate::pattern_body::PatternBody;

/// A real HTTP client (hyper-util's pooled client) speaking HTTP/1.1 or h2c with prior knowledge.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, BoxBody<Bytes, Infallible>>,
    timeout: Duration,
}

/// One request to send: method, absolute URL, extra headers, and a body.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
}

#[derive(Debug, Clone, Default)]
pub enum RequestBody {
    #[default]
    Empty,
    Bytes(Bytes),
    /// `len` pattern bytes, streamed (see [`crate::pattern_byte`]).
    Pattern(u64),
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpClient {
    /// HTTP/1.1, pooled, 10 s per exchange.
    pub fn http1() -> Self {
        Self::build(false)
    }

    /// HTTP/2 with prior knowledge over cleartext (h2c).
    pub fn h2c() -> Self {
        Self::build(true)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub async fn get(&self, url: &str) -> crate::Result<Reply> {
        self.send(RequestSpec::get(url)).await
    }

    /// GET `url` with the `Host` header set to `host`.
    pub async fn get_host(&self, url: &str, host: &str) -> crate::Result<Reply> {
        self.send(RequestSpec::get(url).header("host", host)).await
    }

    pub async fn send(&self, spec: RequestSpec) -> crate::Result<Reply> {
        let url = spec.url.clone();
        let http_err = |reason: String| TestkitError::Http {
            url: url.clone(),
            reason,
        };
        let mut builder = Request::builder().method(spec.method).uri(&spec.url);
        for (name, value) in &spec.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = match spec.body {
            RequestBody::Empty => Empty::new().boxed(),
            RequestBody::Bytes(bytes) => Full::new(bytes).boxed(),
            RequestBody::Pattern(len) => PatternBody::new(len).boxed(),
        };
        let request = builder
            .body(body)
            .map_err(|e| http_err(format!("building the request: {e}")))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| http_err(format!("{e:?}")))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| http_err(format!("reading the body: {e}")))?
                .to_bytes();
            Ok(Reply {
                status: parts.status.as_u16(),
                version: parts.version,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| http_err(format!("no complete response within {:?}", self.timeout)))?
    }

    fn build(http2_only: bool) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let inner = Client::builder(TokioExecutor::new())
            .http2_only(http2_only)
            .pool_idle_timeout(Duration::from_secs(5))
            .build(connector);
        Self {
            inner,
            timeout: Duration::from_secs(10),
        }
    }
}

impl RequestSpec {
    pub fn new(method: Method, url: &str) -> Self {
        Self {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: RequestBody::Empty,
        }
    }

    pub fn get(url: &str) -> Self {
        Self::new(Method::GET, url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }
}

impl Reply {
    /// The echo backend's report, parsed from the body.
    pub fn echo(&self) -> crate::Result<EchoReport> {
        EchoReport::from_json(&self.body)
    }

    /// The `x-backend` header: which backend answered.
    pub fn backend(&self) -> Option<&str> {
        self.header("x-backend")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.body)
    }
}
