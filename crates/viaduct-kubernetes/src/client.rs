//! A small Kubernetes API client: list a collection, then watch it from the list's
//! `resourceVersion` (newline-delimited JSON events). In-cluster (the service account's token
//! and CA) or from `endpoint`/`token`/`certAuthFilePath`.

use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// Where a pod finds its service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The largest list response read (bytes).
pub const MAX_LIST_BYTES: usize = 64 << 20;
/// The largest watch event (one line) read (bytes).
pub const MAX_EVENT_BYTES: usize = 4 << 20;
/// How long the server keeps one watch open before we start another.
const WATCH_TIMEOUT_SECONDS: u32 = 300;
/// A list (or the start of a watch) that takes longer failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the API server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOptions {
    /// `https://host:port`; empty means in-cluster, or `http://localhost:8080` outside.
    pub endpoint: String,
    pub token: String,
    pub cert_auth_file_path: String,
}

/// The client (cheap to clone: the connection pool is shared).
#[derive(Debug, Clone)]
pub struct KubeClient {
    base: Uri,
    token: Token,
    http: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<HttpConnector>,
        Empty<Bytes>,
    >,
}

/// A page of a collection: its objects (as JSON) and the version to watch from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectList {
    pub items: Vec<serde_json::Value>,
    pub resource_version: String,
}

/// One event of a watch.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Added(serde_json::Value),
    Modified(serde_json::Value),
    Deleted(serde_json::Value),
    /// Only the resource version moved.
    Bookmark(String),
    /// The server ended the watch with a status (a `410` asks for a new list).
    Error {
        code: u16,
        message: String,
    },
}

/// Why a request to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubernetes endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("kubernetes TLS: {0}")]
    Tls(String),
    #[error("providers.kubernetesIngress.{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    #[error("reading the kubernetes token {path}: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("GET {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("GET {url}: status {status}: {message}")]
    Status {
        url: String,
        status: StatusCode,
        message: String,
    },
    #[error("GET {url}: the resource version is too old (410 Gone)")]
    Gone { url: String },
    #[error("GET {url}: a response line is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("GET {url}: cannot decode the response: {reason}")]
    Decode { url: String, reason: String },
}

/// The events of one watch, read a line at a time.
#[derive(Debug)]
pub struct WatchStream {
    url: String,
    body: Incoming,
    buffer: BytesMut,
}

#[derive(Debug, Clone)]
enum Token {
    None,
    Fixed(HeaderValue),
    /// Re-read on every request: in-cluster tokens are rotated.
    File(PathBuf),
}

impl KubeClient {
    /// In-cluster when `KUBERNETES_SERVICE_HOST`/`_PORT` are set (the options' endpoint, when
    /// given, wins), else from the options.
    pub fn from_options(options: &ClientOptions) -> Result<Self, KubeError> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_default();
        if !host.is_empty() && !port.is_empty() {
            let endpoint = if options.endpoint.is_empty() {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("https://{host}:{port}")
            } else {
                options.endpoint.clone()
            };
            let dir = PathBuf::from(SERVICE_ACCOUNT_DIR);
            let ca = dir.join("ca.crt");
            return Self::build(
                &endpoint,
                Token::File(dir.join("token")),
                Some(ca.to_string_lossy().as_ref()),
            );
        }
        let endpoint = if options.endpoint.is_empty() {
            "http://localhost:8080"
        } else {
            options.endpoint.as_str()
        };
        let token = if options.token.is_empty() {
            Token::None
        } else {
            Token::Fixed(bearer(&options.token)?)
        };
        let ca = Some(options.cert_auth_file_path.as_str()).filter(|ca| !ca.is_empty());
        Self::build(endpoint, token, ca)
    }

    /// Lists a collection (`path` like `/api/v1/services`), with query parameters.
    pub async fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<ObjectList, KubeError> {
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct ListMeta {
            resource_version: String,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct List {
            metadata: ListMeta,
            items: Option<Vec<serde_json::Value>>,
        }
        let url = self.url(path, query);
        let response = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.send(&url).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_LIST_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        KubeError::TooLarge {
                            url: url.clone(),
                            limit: MAX_LIST_BYTES,
                        }
                    } else {
                        request_error(&url, e.as_ref())
                    }
                })?
                .to_bytes();
            Ok::<_, KubeError>((status, body))
        })
        .await
        .map_err(|_| KubeError::Request {
            url: url.clone(),
            reason: format!("no answer within {REQUEST_TIMEOUT:?}"),
        })??;
        let (status, body) = response;
        check_status(&url, status, &body)?;
        let list: List = serde_json::from_slice(&body).map_err(|e| KubeError::Decode {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok(ObjectList {
            items: list.items.unwrap_or_default(),
            resource_version: list.metadata.resource_version,
        })
    }

    /// Starts watching a collection from `resource_version`.
    pub async fn watch(
        &self,
        path: &str,
        query: &[(&str, &str)],
        resource_version: &str,
    ) -> Result<WatchStream, KubeError> {
        let timeout = WATCH_TIMEOUT_SECONDS.to_string();
        let mut query = query.to_vec();
        query.extend([
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout.as_str()),
        ]);
        if !resource_version.is_empty() {
            query.push(("resourceVersion", resource_version));
        }
        let url = self.url(path, &query);
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.send(&url))
            .await
            .map_err(|_| KubeError::Request {
                url: url.clone(),
                reason: format!("no answer within {REQUEST_TIMEOUT:?}"),
            })??;
        let status = response.status();
        if status != StatusCode::OK {
            let body = Limited::new(response.into_body(), 64 << 10)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            check_status(&url, status, &body)?;
            return Err(KubeError::Status {
                url,
                status,
                message: String::new(),
            });
        }
        Ok(WatchStream {
            url,
            body: response.into_body(),
            buffer: BytesMut::new(),
        })
    }

    fn build(endpoint: &str, token: Token, ca: Option<&str>) -> Result<Self, KubeError> {
        let invalid = |reason: String| KubeError::Endpoint {
            endpoint: endpoint.to_string(),
            reason,
        };
        let base: Uri = endpoint
            .trim_end_matches('/')
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        if !matches!(base.scheme_str(), Some("http" | "https")) || base.host().is_none() {
            return Err(invalid("expected an http:// or https:// URL".into()));
        }
        // The API server's CA, or the system's roots without one.
        let tls = viaduct_config::static_config::ClientTls {
            ca: ca.map(String::from),
            ..Default::default()
        };
        let tls = viaduct_upstream::client_config_from(Some(&tls))
            .map_err(|e| KubeError::Tls(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        Ok(KubeClient { base, token, http })
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.base.to_string().trim_end_matches('/'));
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        url
    }

    async fn send(&self, url: &str) -> Result<http::Response<Incoming>, KubeError> {
        let mut request = Request::get(url)
            .header(ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| request_error(url, &e))?;
        match &self.token {
            Token::None => {}
            Token::Fixed(value) => {
                request.headers_mut().insert(AUTHORIZATION, value.clone());
            }
            Token::File(path) => {
                let token =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|source| KubeError::Token {
                            path: path.clone(),
                            source,
                        })?;
                request
                    .headers_mut()
                    .insert(AUTHORIZATION, bearer(token.trim())?);
            }
        }
        self.http
            .request(request)
            .await
            .map_err(|e| request_error(url, &e))
    }
}

impl WatchStream {
    /// The next event; `None` when the server ended the watch.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, KubeError> {
        loop {
            if let Some(line) = self.take_line() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.decode(&line).map(Some);
            }
            // No newline yet: a line this long is refused before it grows further (frames
            // are bounded by the connection's read buffer).
            if self.buffer.len() > MAX_EVENT_BYTES {
                return Err(KubeError::TooLarge {
                    url: self.url.clone(),
                    limit: MAX_EVENT_BYTES,
                });
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(request_error(&self.url, &e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    fn take_line(&mut self) -> Option<BytesMut> {
        let end = self.buffer.iter().position(|b| *b == b'\n')?;
        let mut line = self.buffer.split_to(end + 1);
        line.truncate(end);
        Some(line)
    }

    fn decode(&self, line: &[u8]) -> Result<WatchEvent, KubeError> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            object: serde_json::Value,
        }
        let decode_error = |reason: String| KubeError::Decode {
            url: self.url.clone(),
            reason,
        };
        let raw: Raw = serde_json::from_slice(line).map_err(|e| decode_error(e.to_string()))?;
        Ok(match raw.kind.as_str() {
            "ADDED" => WatchEvent::Added(raw.object),
            "MODIFIED" => WatchEvent::Modified(raw.object),
            "DELETED" => WatchEvent::Deleted(raw.object),
            "BOOKMARK" => WatchEvent::Bookmark(
                raw.object
                    .pointer("/metadata/resourceVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
            ),
            "ERROR" => WatchEvent::Error {
                code: raw
                    .object
                    .get("code")
                    .and_then(|c| c.as_u64())
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(0),
                message: raw
                    .object
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("")
                    .to_string(),
            },
            other => return Err(decode_error(format!("unknown event type {other:?}"))),
        })
    }
}

fn check_status(url: &str, status: StatusCode, body: &[u8]) -> Result<(), KubeError> {
    if status == StatusCode::OK {
        return Ok(());
    }
    if status == StatusCode::GONE {
        return Err(KubeError::Gone {
            url: url.to_string(),
        });
    }
    // The API answers a `Status` object; its message says why.
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Err(KubeError::Status {
        url: url.to_string(),
        status,
        message,
    })
}

fn bearer(token: &str) -> Result<HeaderValue, KubeError> {
    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| KubeError::Option {
        option: "token",
        reason: "not a valid header value".into(),
    })
}

fn request_error(url: &str, error: &dyn std::error::Error) -> KubeError {
    KubeError::Request {
        url: url.to_string(),
        reason: viaduct_upstream::error_text(error),
    }
}

/// Query values (label selectors hold `=`, `,`, `!` and spaces).
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
