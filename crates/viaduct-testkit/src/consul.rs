use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::error::TestkitError;

/// An in-memory stand-in for Consul's KV HTTP API, since no Consul binary is available here:
/// `GET /v1/kv/<prefix>?recurse` (with blocking queries: `index` and `wait`, answered when the
/// store's index passes it), `PUT` and `DELETE /v1/kv/<key>`, the `X-Consul-Index` header, and
/// the tokens clients sent (`X-Consul-Token`). Answers have the shape Consul gives.
#[derive(Debug)]
pub struct ConsulKv {
    addr: SocketAddr,
    state: Arc<State>,
    accept_loop: AbortHandle,
}

#[derive(Debug)]
struct State {
    keys: Mutex<BTreeMap<String, String>>,
    /// Raised on every write; blocking queries wait on it.
    index: watch::Sender<u64>,
    tokens: Mutex<Vec<String>>,
}

impl ConsulKv {
    /// Starts on a free loopback port, empty, at index 1.
    pub async fn start() -> crate::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TestkitError::io("binding the Consul KV stand-in", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io("address of the Consul KV stand-in", e))?;
        let state = Arc::new(State {
            keys: Mutex::default(),
            index: watch::Sender::new(1),
            tokens: Mutex::default(),
        });
        let served = state.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(request).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .abort_handle();
        Ok(ConsulKv {
            addr,
            state,
            accept_loop,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Writes every `(key, value)` at one new index (as a Consul transaction would).
    pub fn put_all(&self, pairs: &[(&str, &str)]) {
        let mut keys = lock(&self.state.keys);
        for (key, value) in pairs {
            keys.insert((*key).to_string(), (*value).to_string());
        }
        self.state.index.send_modify(|i| *i += 1);
    }

    pub fn delete(&self, key: &str) {
        lock(&self.state.keys).remove(key);
        self.state.index.send_modify(|i| *i += 1);
    }

    /// The `X-Consul-Token` values received, oldest first.
    pub fn tokens(&self) -> Vec<String> {
        lock(&self.state.tokens).clone()
    }
}

impl Drop for ConsulKv {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl State {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(token) = request.headers().get("x-consul-token") {
            lock(&self.tokens).push(String::from_utf8_lossy(token.as_bytes()).into_owned());
        }
        let path = request.uri().path().to_string();
        let Some(key) = path.strip_prefix("/v1/kv/").map(str::to_string) else {
            return reply(StatusCode::NOT_FOUND, "");
        };
        let query: BTreeMap<String, String> = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect();
        match *request.method() {
            Method::GET => self.get(&key, &query).await,
            Method::PUT => {
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                lock(&self.keys).insert(key, String::from_utf8_lossy(&body).into_owned());
                self.index.send_modify(|i| *i += 1);
                reply(StatusCode::OK, "true")
            }
            Method::DELETE => {
                lock(&self.keys).remove(&key);
                self.index.send_modify(|i| *i += 1);
                reply(StatusCode::OK, "true")
            }
            _ => reply(StatusCode::METHOD_NOT_ALLOWED, ""),
        }
    }

    async fn get(&self, key: &str, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
        // A blocking query waits until the index passes the one given, or `wait` (Consul's
        // default 5 minutes, shortened here to 10 s at most).
        if let Some(seen) = query.get("index").and_then(|i| i.parse::<u64>().ok()) {
            let wait = query
                .get("wait")
                .and_then(|w| w.trim_end_matches('s').parse::<u64>().ok())
                .unwrap_or(10)
                .min(10);
            let mut changes = self.index.subscribe();
            let _ = tokio::time::timeout(
                Duration::from_secs(wait),
                changes.wait_for(|index| *index > seen),
            )
            .await;
        }
        let index = *self.index.borrow();
        let keys = lock(&self.keys);
        let entries: Vec<serde_json::Value> = keys
            .iter()
            .filter(|(k, _)| {
                if query.contains_key("recurse") {
                    k.starts_with(key)
                } else {
                    k.as_str() == key
                }
            })
            .map(|(k, v)| {
                serde_json::json!({
                    "Key": k,
                    "Value": base64::engine::general_purpose::STANDARD.encode(v),
                    "Flags": 0,
                    "CreateIndex": index,
                    "ModifyIndex": index,
                    "LockIndex": 0,
                })
            })
            .collect();
        let mut response = if entries.is_empty() {
            reply(StatusCode::NOT_FOUND, "")
        } else {
            reply(
                StatusCode::OK,
                &serde_json::Value::Array(entries).to_string(),
            )
        };
        if let Ok(value) = index.to_string().parse() {
            response.headers_mut().insert("x-consul-index", value);
        }
        response
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
