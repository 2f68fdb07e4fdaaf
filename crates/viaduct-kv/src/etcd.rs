//! `providers.etcd`: the configuration under `<rootKey>/` in etcd (v3), watched live.
//!
//! etcd serves its v3 API as JSON over HTTP (the gRPC gateway, on the client port of every
//! etcd since 3.3), so the provider needs no gRPC stack: a read is one `POST /v3/kv/range` over
//! the root's prefix, and the watch is one streamed `POST /v3/watch`, whose events arrive as
//! JSON lines. Keys and values travel base64-encoded. With `username`, a token from
//! `/v3/auth/authenticate` goes in every request's `Authorization` header.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::sync::mpsc;
use viaduct_config::{static_config, DynamicConfig};
use viaduct_providers::ProviderMessage;

use crate::http::{read_ok, Endpoints, HttpError, MAX_ANSWER};
use crate::layout::LayoutError;
use crate::store::{self, KvError, Store, Timing};

/// The name the provider's objects are qualified with (`name@etcd`).
pub const ETCD_PROVIDER_NAME: &str = "etcd";

/// A request that does not answer in this time fails (the watch stream excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and watches one etcd cluster.
pub struct EtcdProvider {
    endpoints: Endpoints,
    root_key: String,
    credentials: Option<(String, String)>,
    /// The auth token, once obtained; dropped when etcd refuses it.
    token: Mutex<Option<String>>,
    timing: Timing,
}

/// A live watch: the streamed answer and what has been read of its current line.
pub struct EtcdWatch {
    body: Incoming,
    pending: BytesMut,
}

#[derive(Debug, thiserror::Error)]
enum EtcdError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("unexpected answer: {0}")]
    Protocol(String),
    #[error("the watch ended: {0}")]
    WatchEnded(String),
}

#[derive(Deserialize)]
struct RangeAnswer {
    #[serde(default)]
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct WatchLine {
    result: Option<WatchResult>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WatchResult {
    #[serde(default)]
    events: Vec<serde_json::Value>,
    #[serde(default)]
    canceled: bool,
    #[serde(default)]
    cancel_reason: String,
}

#[derive(Deserialize)]
struct AuthAnswer {
    token: String,
}

impl std::fmt::Debug for EtcdProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdProvider")
            .field("endpoints", &self.endpoints.describe())
            .field("root_key", &self.root_key)
            .finish()
    }
}

impl EtcdProvider {
    /// Checks the options. Nothing is contacted yet.
    pub fn new(options: &static_config::EtcdProvider) -> Result<Self, KvError> {
        let option = |option, reason: String| KvError::Option {
            provider: ETCD_PROVIDER_NAME,
            option,
            reason,
        };
        if options.root_key.split('/').all(str::is_empty) {
            return Err(option("rootKey", "must not be empty".into()));
        }
        let endpoints =
            Endpoints::new(ETCD_PROVIDER_NAME, &options.endpoints, options.tls.as_ref())?;
        Ok(EtcdProvider {
            endpoints,
            root_key: options.root_key.trim_matches('/').to_owned(),
            credentials: (!options.username.is_empty())
                .then(|| (options.username.clone(), options.password.clone())),
            token: Mutex::new(None),
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

    /// The root's key range: everything that starts with `<root>/`.
    fn range(&self) -> serde_json::Value {
        let prefix = format!("{}/", self.root_key);
        let mut end = prefix.clone().into_bytes();
        // The range end is the prefix with its last byte incremented ('/' + 1 = '0').
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        serde_json::json!({"key": encode(prefix.as_bytes()), "range_end": encode(&end)})
    }

    /// POSTs `body` to `path` on the first endpoint that answers; the answer's head and body.
    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(String, http::response::Parts, Incoming), EtcdError> {
        let token = if path == "/v3/auth/authenticate" {
            None
        } else {
            self.token().await?
        };
        let body = Bytes::from(body.to_string());
        let (endpoint, parts, answer) = self
            .endpoints
            .send(REQUEST_TIMEOUT, |url| {
                let mut request = Request::post(format!("{url}{path}"))
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(token) = &token {
                    request = request.header(http::header::AUTHORIZATION, token);
                }
                request.body(Full::new(body.clone()))
            })
            .await?;
        if parts.status == StatusCode::UNAUTHORIZED {
            // A token etcd no longer knows: authenticate again next time.
            *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok((endpoint, parts, answer))
    }

    /// A whole answer, which must be `200 OK`, decoded from JSON.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, EtcdError> {
        let (endpoint, parts, body) = self.post(path, body).await?;
        let bytes = read_ok(endpoint, &parts, body, REQUEST_TIMEOUT).await?;
        serde_json::from_slice(&bytes).map_err(|e| EtcdError::Protocol(e.to_string()))
    }

    /// The auth token, obtained first if needed; none without credentials.
    async fn token(&self) -> Result<Option<String>, EtcdError> {
        let Some((name, password)) = &self.credentials else {
            return Ok(None);
        };
        if let Some(token) = self.token.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(token));
        }
        let body = serde_json::json!({"name": name, "password": password});
        let answer: AuthAnswer = Box::pin(self.call("/v3/auth/authenticate", &body)).await?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer.token.clone());
        Ok(Some(answer.token))
    }

    fn etcd_error(&self, source: EtcdError) -> KvError {
        KvError::Store {
            store: "etcd",
            endpoints: self.endpoints.describe(),
            source: Box::new(source),
        }
    }
}

impl Store for EtcdProvider {
    type Watch = EtcdWatch;
    const PROVIDER: &'static str = ETCD_PROVIDER_NAME;

    fn root_key(&self) -> &str {
        &self.root_key
    }

    async fn read_pairs(&self) -> Result<Vec<(String, String)>, KvError> {
        let answer: RangeAnswer = self
            .call("/v3/kv/range", &self.range())
            .await
            .map_err(|e| self.etcd_error(e))?;
        let mut pairs = Vec::with_capacity(answer.kvs.len());
        for kv in answer.kvs {
            let key = decode(&kv.key)
                .and_then(|k| String::from_utf8(k).ok())
                .ok_or_else(|| {
                    self.etcd_error(EtcdError::Protocol(format!(
                        "key {:?} is not base64 text",
                        kv.key
                    )))
                })?;
            let value = decode(&kv.value)
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| LayoutError {
                    key: key.clone(),
                    message: "the value is not UTF-8 text".into(),
                })?;
            pairs.push((key, value));
        }
        Ok(pairs)
    }

    async fn watch(&self) -> Result<Option<EtcdWatch>, KvError> {
        let request = serde_json::json!({"create_request": self.range()});
        let (endpoint, parts, body) = self
            .post("/v3/watch", &request)
            .await
            .map_err(|e| self.etcd_error(e))?;
        if parts.status != StatusCode::OK {
            let status = HttpError::Status {
                endpoint,
                status: parts.status,
                body: String::new(),
            };
            return Err(self.etcd_error(status.into()));
        }
        Ok(Some(EtcdWatch {
            body,
            pending: BytesMut::new(),
        }))
    }

    async fn next_event(&self, watch: &mut EtcdWatch) -> Result<(), KvError> {
        loop {
            let line = watch.next_line().await.map_err(|e| self.etcd_error(e))?;
            let line: WatchLine = serde_json::from_slice(&line)
                .map_err(|e| self.etcd_error(EtcdError::Protocol(e.to_string())))?;
            if let Some(error) = line.error {
                return Err(self.etcd_error(EtcdError::WatchEnded(error.to_string())));
            }
            let Some(result) = line.result else { continue };
            if result.canceled {
                return Err(self.etcd_error(EtcdError::WatchEnded(result.cancel_reason)));
            }
            // The first line confirms the watch (`created`); progress notifications carry
            // no events either.
            if !result.events.is_empty() {
                return Ok(());
            }
        }
    }
}

impl EtcdWatch {
    /// The next complete line of the stream, without its newline.
    async fn next_line(&mut self) -> Result<Bytes, EtcdError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line = self.pending.split_to(end + 1).freeze();
                let line = line.slice(..end);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(line);
            }
            if self.pending.len() > MAX_ANSWER {
                return Err(EtcdError::Protocol("a watch line is too long".into()));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.pending.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
                Some(Err(e)) => return Err(EtcdError::WatchEnded(e.to_string())),
                None => return Err(EtcdError::WatchEnded("etcd closed the stream".into())),
            }
        }
    }
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
