//! `providers.http`: dynamic configuration polled from an HTTP(S) endpoint, as Traefik's HTTP
//! provider does it.
//!
//! Every `pollInterval` the endpoint is fetched with a GET (the configured `headers` set, the
//! whole exchange bounded by `pollTimeout`); a `200` body is decoded as YAML (JSON is YAML) into
//! the same model files use, and sent on when its bytes changed. Anything else — a connection
//! error, another status, a body over `maxResponseBodySize`, a body that does not decode — is
//! logged with the endpoint and the reason, and the last good configuration stays.

mod client;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use tokio::sync::mpsc;
use viaduct_config::{parse_document, static_config, ConfigError, DynamicConfig, Format, Origin};
use viaduct_providers::ProviderMessage;

/// The name the provider's objects are qualified with (`name@http`).
pub const HTTP_PROVIDER_NAME: &str = "http";

/// Polls one endpoint and sends each new configuration.
#[derive(Debug)]
pub struct HttpProvider {
    endpoint: Uri,
    poll_interval: Duration,
    poll_timeout: Duration,
    headers: HeaderMap,
    max_body: Option<usize>,
    client: client::Client,
}

/// Why the options are refused, or why one poll brought no configuration.
#[derive(Debug, thiserror::Error)]
pub enum HttpProviderError {
    #[error("providers.http.endpoint: {0}")]
    Endpoint(String),
    #[error("providers.http.pollInterval must be greater than 0")]
    PollInterval,
    #[error("providers.http.headers.{name}: {reason}")]
    Header { name: String, reason: String },
    #[error("providers.http.tls: {0}")]
    Tls(String),
    #[error("GET {endpoint}: {reason}")]
    Fetch { endpoint: Uri, reason: String },
    #[error("GET {endpoint}: status {status}, expected 200")]
    Status { endpoint: Uri, status: StatusCode },
    #[error("GET {endpoint}: no complete answer within pollTimeout ({timeout:?})")]
    Timeout { endpoint: Uri, timeout: Duration },
    #[error("GET {endpoint}: the body is larger than maxResponseBodySize ({limit} bytes)")]
    TooLarge { endpoint: Uri, limit: usize },
    #[error("GET {endpoint}: {source}")]
    Decode {
        endpoint: Uri,
        #[source]
        source: Box<ConfigError>,
    },
}

impl HttpProvider {
    /// Checks the options and builds the client (TLS material is read here, once).
    pub fn new(options: &static_config::HttpProvider) -> Result<Self, HttpProviderError> {
        let endpoint: Uri = options
            .endpoint
            .parse()
            .map_err(|e| HttpProviderError::Endpoint(format!("{:?}: {e}", options.endpoint)))?;
        match endpoint.scheme_str() {
            Some("http" | "https") if endpoint.host().is_some() => {}
            _ => {
                return Err(HttpProviderError::Endpoint(format!(
                    "{:?}: expected an http:// or https:// URL",
                    options.endpoint
                )))
            }
        }
        let poll_interval = options
            .poll_interval
            .positive()
            .ok_or(HttpProviderError::PollInterval)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let header = |reason: String| HttpProviderError::Header {
                name: name.clone(),
                reason,
            };
            let key = HeaderName::from_bytes(name.as_bytes()).map_err(|e| header(e.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|e| header(e.to_string()))?;
            headers.insert(key, value);
        }
        Ok(HttpProvider {
            endpoint,
            poll_interval,
            // Go's client timeout of 0 means none; an hour stands for it, so a poll always ends.
            poll_timeout: options
                .poll_timeout
                .positive()
                .unwrap_or(Duration::from_secs(3600)),
            headers,
            max_body: usize::try_from(options.max_response_body_size).ok(),
            client: client::build(options.tls.as_ref())?,
        })
    }

    /// One poll: the endpoint's configuration, or why there is none.
    pub async fn fetch(&self) -> Result<DynamicConfig, HttpProviderError> {
        let body = self.fetch_body().await?;
        self.decode(&body)
    }

    /// Polls until `tx` closes. The first poll is immediate.
    pub async fn run(self, tx: mpsc::Sender<ProviderMessage>) {
        let mut last_body: Option<Bytes> = None;
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = tx.closed() => return,
            }
            let body = match self.fetch_body().await {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(provider = HTTP_PROVIDER_NAME, error = %e, "cannot fetch the configuration; the last one stays");
                    continue;
                }
            };
            // Unchanged bytes: nothing to decode or send (Traefik compares a hash).
            if last_body.as_ref() == Some(&body) {
                continue;
            }
            match self.decode(&body) {
                Ok(config) => {
                    last_body = Some(body);
                    let message = ProviderMessage {
                        provider: HTTP_PROVIDER_NAME.into(),
                        config: Arc::new(config),
                    };
                    if tx.send(message).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(provider = HTTP_PROVIDER_NAME, error = %e, "cannot decode the configuration; the last one stays");
                }
            }
        }
    }

    async fn fetch_body(&self) -> Result<Bytes, HttpProviderError> {
        let exchange = async {
            let mut request = Request::get(self.endpoint.clone())
                .body(Empty::<Bytes>::new())
                .map_err(|e| self.fetch_error(e.to_string()))?;
            *request.headers_mut() = self.headers.clone();
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| self.fetch_error(viaduct_upstream::error_text(&e)))?;
            if response.status() != StatusCode::OK {
                return Err(HttpProviderError::Status {
                    endpoint: self.endpoint.clone(),
                    status: response.status(),
                });
            }
            let body = response.into_body();
            let collected = match self.max_body {
                Some(limit) => Limited::new(body, limit).collect().await.map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        HttpProviderError::TooLarge {
                            endpoint: self.endpoint.clone(),
                            limit,
                        }
                    } else {
                        self.fetch_error(e.to_string())
                    }
                })?,
                None => body
                    .collect()
                    .await
                    .map_err(|e| self.fetch_error(e.to_string()))?,
            };
            Ok(collected.to_bytes())
        };
        tokio::time::timeout(self.poll_timeout, exchange)
            .await
            .map_err(|_| HttpProviderError::Timeout {
                endpoint: self.endpoint.clone(),
                timeout: self.poll_timeout,
            })?
    }

    fn decode(&self, body: &[u8]) -> Result<DynamicConfig, HttpProviderError> {
        let text = String::from_utf8_lossy(body);
        parse_document::<DynamicConfig>(
            &text,
            Format::Yaml,
            Origin::Inline("the providers.http response"),
        )
        .map_err(|source| HttpProviderError::Decode {
            endpoint: self.endpoint.clone(),
            source: Box::new(source),
        })
    }

    fn fetch_error(&self, reason: String) -> HttpProviderError {
        HttpProviderError::Fetch {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }
}
