//! `providers.consul`: the configuration under `<rootKey>/` in Consul's KV store, watched live.
//!
//! A read is `GET /v1/kv/<rootKey>/?recurse`; changes are followed with Consul's blocking
//! queries — the same request with `index=<X-Consul-Index of the last answer>`, which Consul
//! holds until something under the prefix changes (or `wait` passes). `token` goes in
//! `X-Consul-Token`, `username`/`password` in HTTP basic authentication.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde::Deserialize;
use tokio::sync::mpsc;
use viaduct_config::{static_config, DynamicConfig};
use viaduct_providers::ProviderMessage;

use crate::http::{read_ok, Endpoints, HttpError};
use crate::layout::LayoutError;
use crate::store::{self, KvError, Store, Timing};

/// The name the provider's objects are qualified with (`name@consul`).
pub const CONSUL_PROVIDER_NAME: &str = "consul";

/// How long Consul may hold a blocking query; the request itself may take a little longer.
const BLOCKING_WAIT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and watches one Consul KV store.
pub struct ConsulProvider {
    endpoints: Endpoints,
    root_key: String,
    token: Option<String>,
    /// `Basic …`, from `username` and `password`.
    basic: Option<String>,
    timing: Timing,
}

/// A watch: the index of the last answer.
pub struct ConsulWatch {
    index: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
    value: Option<String>,
}

impl std::fmt::Debug for ConsulProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulProvider")
            .field("endpoints", &self.endpoints.describe())
            .field("root_key", &self.root_key)
            .finish()
    }
}

impl ConsulProvider {
    /// Checks the options. Nothing is contacted yet.
    pub fn new(options: &static_config::ConsulProvider) -> Result<Self, KvError> {
        if options.root_key.split('/').all(str::is_empty) {
            return Err(KvError::Option {
                provider: CONSUL_PROVIDER_NAME,
                option: "rootKey",
                reason: "must not be empty".into(),
            });
        }
        let endpoints = Endpoints::new(
            CONSUL_PROVIDER_NAME,
            &options.endpoints,
            options.tls.as_ref(),
        )?;
        let basic = (!options.username.is_empty()).then(|| {
            let pair = format!("{}:{}", options.username, options.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(ConsulProvider {
            endpoints,
            root_key: options.root_key.trim_matches('/').to_owned(),
            token: (!options.token.is_empty()).then(|| options.token.clone()),
            basic,
            timing: Timing::default(),
        })
    }

    /// Shortens the backoff (first retry, cap); for tests.
    pub fn with_retry_delays(mut self, first: Duration, max: Duration) -> Self {
        self.timing.first_backoff = first;
        self.timing.max_backoff = max;
        self
    }

    /// One read of the store.
    pub async fn fetch(&self) -> Result<DynamicConfig, KvError> {
        store::fetch(self).await
    }

    /// Reads, then watches, until `tx` closes.
    pub async fn run(self, tx: mpsc::Sender<ProviderMessage>) {
        store::run(&self, self.timing, tx).await;
    }

    /// The entries under the root and the store's index; `index` makes it a blocking query.
    async fn list(&self, index: Option<u64>) -> Result<(Vec<Entry>, u64), KvError> {
        let mut query = String::from("recurse=true");
        let mut timeout = REQUEST_TIMEOUT;
        if let Some(index) = index {
            query.push_str(&format!("&index={index}&wait={}s", BLOCKING_WAIT.as_secs()));
            timeout += BLOCKING_WAIT;
        }
        let path = format!("/v1/kv/{}/?{query}", self.root_key);
        let (endpoint, parts, body) = self
            .endpoints
            .send(timeout, |url| {
                let mut request = Request::get(format!("{url}{path}"));
                if let Some(token) = &self.token {
                    request = request.header("x-consul-token", token);
                }
                if let Some(basic) = &self.basic {
                    request = request.header(http::header::AUTHORIZATION, basic);
                }
                request.body(Full::new(Bytes::new()))
            })
            .await
            .map_err(|e| self.consul_error(e))?;
        let store_index = parts
            .headers
            .get("x-consul-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        // Nothing under the prefix: Consul answers 404.
        if parts.status == StatusCode::NOT_FOUND {
            return Ok((Vec::new(), store_index));
        }
        let bytes = read_ok(endpoint, &parts, body, timeout)
            .await
            .map_err(|e| self.consul_error(e))?;
        let entries = serde_json::from_slice(&bytes)
            .map_err(|e| self.consul_error(HttpError::Protocol(e.to_string())))?;
        Ok((entries, store_index))
    }

    fn consul_error(&self, source: HttpError) -> KvError {
        KvError::Store {
            store: "Consul",
            endpoints: self.endpoints.describe(),
            source: Box::new(source),
        }
    }
}

impl Store for ConsulProvider {
    type Watch = ConsulWatch;
    const PROVIDER: &'static str = CONSUL_PROVIDER_NAME;

    fn root_key(&self) -> &str {
        &self.root_key
    }

    async fn read_pairs(&self) -> Result<Vec<(String, String)>, KvError> {
        let (entries, _) = self.list(None).await?;
        let mut pairs = Vec::with_capacity(entries.len());
        for entry in entries {
            // A "folder" entry has no value.
            let Some(value) = entry.value else { continue };
            let value = base64::engine::general_purpose::STANDARD
                .decode(&value)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| LayoutError {
                    key: entry.key.clone(),
                    message: "the value is not UTF-8 text".into(),
                })?;
            pairs.push((entry.key, value));
        }
        Ok(pairs)
    }

    async fn watch(&self) -> Result<Option<ConsulWatch>, KvError> {
        let (_, index) = self.list(None).await?;
        Ok(Some(ConsulWatch { index }))
    }

    async fn next_event(&self, watch: &mut ConsulWatch) -> Result<(), KvError> {
        loop {
            let (_, index) = self.list(Some(watch.index)).await?;
            // Consul's index only grows, except after a store reset: start over then.
            let changed = index != watch.index;
            watch.index = index;
            if changed {
                return Ok(());
            }
            // An answer without a change normally comes after `wait`; one that comes at once
            // (a proxy in front that does not hold blocking queries) must not spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
