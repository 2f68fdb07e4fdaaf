//! The HTTP side the stores spoken over HTTP share (etcd's JSON API, Consul's KV API):
//! endpoints tried in order, TLS from the provider's `tls` section, bounded answers.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use viaduct_config::static_config::ClientTls;

use crate::store::KvError;

/// The largest answer to a read, and the longest line of a watch stream.
pub(crate) const MAX_ANSWER: usize = 64 * 1024 * 1024;

type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A store's endpoints and the client that reaches them.
pub(crate) struct Endpoints {
    client: Client,
    /// `scheme://host:port`, tried in order.
    urls: Vec<String>,
}

/// One exchange that did not happen, or was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{endpoint} answered {status}: {body}")]
    Status {
        endpoint: String,
        status: StatusCode,
        body: String,
    },
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl Endpoints {
    /// `endpoints` as written (`host:port`, or with a scheme); `https` by default when `tls`
    /// is set. The errors name the option.
    pub(crate) fn new(
        provider: &'static str,
        endpoints: &[String],
        tls: Option<&ClientTls>,
    ) -> Result<Endpoints, KvError> {
        let option = |option, reason: String| KvError::Option {
            provider,
            option,
            reason,
        };
        if endpoints.is_empty() {
            return Err(option(
                "endpoints",
                "at least one endpoint is needed".into(),
            ));
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut urls = Vec::new();
        for endpoint in endpoints {
            let url = if endpoint.contains("://") {
                endpoint.trim_end_matches('/').to_string()
            } else {
                format!("{scheme}://{endpoint}")
            };
            match url.parse::<Uri>() {
                Ok(uri) if uri.host().is_some() && uri.port_u16().is_some() => urls.push(url),
                _ => {
                    return Err(option(
                        "endpoints",
                        format!("{endpoint:?} is not a host:port address"),
                    ))
                }
            }
        }
        let tls =
            viaduct_upstream::client_config_from(tls).map_err(|e| option("tls", e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(2)
            .build(connector);
        Ok(Endpoints { client, urls })
    }

    /// The endpoints, for messages.
    pub(crate) fn describe(&self) -> String {
        self.urls.join(", ")
    }

    /// Sends the request `build` makes for each endpoint in turn (the endpoint's URL is its
    /// argument) until one answers within `timeout`; that endpoint, and the answer's head and
    /// body.
    pub(crate) async fn send(
        &self,
        timeout: Duration,
        build: impl Fn(&str) -> Result<Request<Full<Bytes>>, http::Error>,
    ) -> Result<(String, http::response::Parts, Incoming), HttpError> {
        let mut last = HttpError::Unreachable("no endpoint".into());
        for url in &self.urls {
            let request = build(url).map_err(|e| HttpError::Protocol(e.to_string()))?;
            match tokio::time::timeout(timeout, self.client.request(request)).await {
                Ok(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    return Ok((url.clone(), parts, body));
                }
                Ok(Err(e)) => {
                    last = HttpError::Unreachable(format!(
                        "{url}: {}",
                        viaduct_upstream::error_text(&e)
                    ))
                }
                Err(_) => last = HttpError::Unreachable(format!("{url}: no answer in time")),
            }
        }
        Err(last)
    }
}

/// A whole answer body (at most [`MAX_ANSWER`]), which must come with `200 OK`.
pub(crate) async fn read_ok(
    endpoint: String,
    parts: &http::response::Parts,
    body: Incoming,
    timeout: Duration,
) -> Result<Bytes, HttpError> {
    let bytes = tokio::time::timeout(timeout, Limited::new(body, MAX_ANSWER).collect())
        .await
        .map_err(|_| HttpError::Unreachable(format!("{endpoint}: the answer did not end in time")))?
        .map_err(|e| HttpError::Unreachable(format!("{endpoint}: {e}")))?
        .to_bytes();
    if parts.status != StatusCode::OK {
        return Err(HttpError::Status {
            endpoint,
            status: parts.status,
            body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        });
    }
    Ok(bytes)
}
