use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::error::TestkitError;

/// A gRPC endpoint over cleartext HTTP/2 (h2c) that records every unary call and answers it
/// with a settable `grpc-status` trailer: an OpenTelemetry collector's receiving side, for
/// exporters' tests.
#[derive(Debug)]
pub struct GrpcCollector {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<GrpcCall>>>,
    status: Arc<Mutex<String>>,
    accept_loop: AbortHandle,
}

/// One call as received.
#[derive(Debug, Clone)]
pub struct GrpcCall {
    pub path: String,
    pub headers: HeaderMap,
    /// The request body: gRPC's 5-byte prefix and the message.
    pub body: Bytes,
}

impl GrpcCall {
    /// The message without its gRPC framing, gunzipped when the client compressed it (as
    /// OpenTelemetry's Go exporters do); empty when the framing is wrong.
    pub fn message(&self) -> Vec<u8> {
        let Some([flag, a, b, c, d]) = self.body.get(..5) else {
            return Vec::new();
        };
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let Some(message) = self.body.get(5..5 + len) else {
            return Vec::new();
        };
        if *flag == 0 {
            return message.to_vec();
        }
        let gzip = self
            .headers
            .get("grpc-encoding")
            .is_some_and(|e| e.as_bytes() == b"gzip");
        let mut plain = Vec::new();
        if gzip {
            let _ =
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(message), &mut plain);
        }
        plain
    }
}

impl GrpcCollector {
    /// Starts on a free loopback port, answering `grpc-status: 0`.
    pub async fn start() -> crate::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| TestkitError::io("binding the gRPC collector", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| TestkitError::io("address of the gRPC collector", e))?;
        let calls: Arc<Mutex<Vec<GrpcCall>>> = Arc::default();
        let status = Arc::new(Mutex::new("0".to_string()));
        let (seen, answer) = (calls.clone(), status.clone());
        let accept_loop = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, answer) = (seen.clone(), answer.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let (seen, answer) = (seen.clone(), answer.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            lock(&seen).push(GrpcCall {
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body,
                            });
                            Ok::<_, Infallible>(reply(&lock(&answer)))
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .abort_handle();
        Ok(GrpcCollector {
            addr,
            calls,
            status,
            accept_loop,
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// The `grpc-status` of the next answers (`"0"` is success).
    pub fn set_status(&self, status: &str) {
        *lock(&self.status) = status.to_string();
    }

    /// The calls received so far, oldest first.
    pub fn calls(&self) -> Vec<GrpcCall> {
        lock(&self.calls).clone()
    }
}

impl Drop for GrpcCollector {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

type ReplyBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// An empty message answer with the status in the trailers.
fn reply(status: &str) -> Response<ReplyBody> {
    let mut trailers = HeaderMap::new();
    if let Ok(value) = status.parse() {
        trailers.insert("grpc-status", value);
    }
    if status != "0" {
        trailers.insert(
            "grpc-message",
            http::HeaderValue::from_static("collector overloaded"),
        );
    }
    let frames = vec![Ok(Frame::trailers(trailers))];
    let mut response = Response::new(StreamBody::new(futures_util::stream::iter(frames)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
