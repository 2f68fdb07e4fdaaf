//! OTLP over gRPC (`otlp.grpc`): the same protobuf export requests, sent as one unary gRPC call
//! over HTTP/2 — a 5-byte length prefix before the message, the outcome in the `grpc-status`
//! trailer.
//!
//! An exporter runs on its own thread and pushes every few seconds, so each export makes a
//! small current-thread runtime and one connection, as the HTTP/1.1 exporter opens one
//! connection per export.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::{Collector, TIMEOUT};

/// Sends `message` to the collector's gRPC method (`collector.path`); an answer other than
/// `grpc-status: 0` is an error carrying the status and `grpc-message`.
pub(super) fn post(collector: &Collector, message: &[u8]) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(TIMEOUT, call(collector, message))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the collector did not answer in time",
                )
            })?
    })
}

async fn call(collector: &Collector, message: &[u8]) -> std::io::Result<()> {
    let stream = TcpStream::connect(collector.authority.as_str()).await?;
    stream.set_nodelay(true)?;
    match &collector.tls {
        Some(tls) => {
            // gRPC needs HTTP/2, which TLS negotiates by ALPN.
            let mut config = (*tls.0).clone();
            config.alpn_protocols = vec![b"h2".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let name: ServerName<'static> = collector.server_name()?;
            let stream = connector.connect(name, stream).await?;
            exchange(collector, TokioIo::new(stream), message).await
        }
        None => exchange(collector, TokioIo::new(stream), message).await,
    }
}

async fn exchange<T>(collector: &Collector, io: T, message: &[u8]) -> std::io::Result<()>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(connection);

    let scheme = if collector.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let uri = format!("{scheme}://{}{}", collector.authority, collector.path);
    let mut request = Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(Full::new(frame(message)))
        .map_err(std::io::Error::other)?;
    for (name, value) in &collector.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(std::io::Error::other)?;
        let value = HeaderValue::from_str(value).map_err(std::io::Error::other)?;
        request.headers_mut().append(name, value);
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    if !response.status().is_success() {
        return Err(std::io::Error::other(format!(
            "the collector answered HTTP {}",
            response.status()
        )));
    }
    // A failure may come in the head alone ("trailers-only"), or after the body.
    let head = response.headers().clone();
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = trailers
        .get("grpc-status")
        .or_else(|| head.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status == "0" {
        return Ok(());
    }
    let detail = trailers
        .get("grpc-message")
        .or_else(|| head.get("grpc-message"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Err(std::io::Error::other(format!(
        "the collector answered grpc-status {status:?} {detail}"
    )))
}

/// The gRPC message framing: not compressed (0), the length (big-endian), the message.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_length_prefixed() {
        assert_eq!(&frame(b"abc")[..], b"\0\0\0\0\x03abc");
    }
}
