//! gRPC health checks: the `grpc.health.v1.Health/Check` call, over HTTP/2.
//!
//! The protocol is small enough to speak by hand: the request is an empty
//! `HealthCheckRequest` (a five-byte gRPC frame), and the answer is a `HealthCheckResponse`
//! whose field 1 is the serving status. No protobuf library is needed for one varint.

use http::header::{HeaderValue, CONTENT_TYPE, HOST, TE};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Uri, Version};
use http_body_util::BodyExt;

use crate::body::full_body;
use crate::transport::Transport;

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// An empty message: no compression flag, zero length.
const EMPTY_REQUEST: &[u8] = &[0, 0, 0, 0, 0];
const SERVING: u64 = 1;
const UNIMPLEMENTED: &str = "12";

/// Calls the health service at `target`'s scheme and authority.
pub(super) async fn check(
    transport: &Transport,
    target: &Uri,
    host: &HeaderValue,
) -> Result<(), String> {
    let mut parts = target.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::from_static(CHECK_PATH));
    let uri = Uri::from_parts(parts).map_err(|e| e.to_string())?;
    let cleartext = uri.scheme() == Some(&Scheme::HTTP);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .version(Version::HTTP_2)
        .body(full_body(EMPTY_REQUEST))
        .map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    headers.insert(HOST, host.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));

    let response = transport
        .send(request, cleartext)
        .await
        .map_err(|e| format!("gRPC health check failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "gRPC health check failed: HTTP status {}",
            response.status().as_u16()
        ));
    }
    let header_status = response.headers().get("grpc-status").cloned();
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("gRPC health check failed: reading the answer: {e}"))?;
    let trailer_status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .cloned();
    let grpc_status = trailer_status.or(header_status);
    match grpc_status.as_ref().and_then(|v| v.to_str().ok()) {
        Some("0") => {}
        Some(UNIMPLEMENTED) => {
            return Err("gRPC server does not implement the health protocol".into())
        }
        Some(code) => return Err(format!("gRPC health check failed: status {code}")),
        None => return Err("gRPC health check failed: no grpc-status".into()),
    }
    match serving_status(&collected.to_bytes()) {
        Some(SERVING) => Ok(()),
        Some(status) => Err(format!(
            "received gRPC status code: {}",
            status_name(status)
        )),
        None => Err("gRPC health check failed: malformed answer".into()),
    }
}

/// Field 1 of the first message in a gRPC body (0, UNKNOWN, when absent).
fn serving_status(body: &[u8]) -> Option<u64> {
    let header = body.get(..5)?;
    if header[0] != 0 {
        // A compressed answer to an uncompressed request: not something servers do.
        return None;
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut message = body.get(5..5 + len)?;
    let mut status = 0;
    while !message.is_empty() {
        let (key, rest) = varint(message)?;
        message = rest;
        let (field, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                let (value, rest) = varint(message)?;
                message = rest;
                if field == 1 {
                    status = value;
                }
            }
            2 => {
                let (len, rest) = varint(message)?;
                message = rest.get(usize::try_from(len).ok()?..)?;
            }
            _ => return None,
        }
    }
    Some(status)
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

fn status_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unrecognised",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::Response;
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    use crate::transport::Transport;
    use crate::transport::TransportSettings;

    #[test]
    fn serving_status_is_field_one() {
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08, 0x01]), Some(1));
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]), Some(0));
        assert_eq!(serving_status(&[0, 0, 0, 0, 2, 0x08]), None);
    }

    /// An h2c server answering the health call with `status` (gRPC code in `grpc-status`).
    async fn server(serving: u8, grpc_status: &'static str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| async move {
                        assert_eq!(req.uri().path(), CHECK_PATH);
                        let body = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, serving]);
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/grpc")
                                .header("grpc-status", grpc_status)
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn checks_a_grpc_server() {
        let transport =
            Transport::new(TransportSettings::from_static(&Default::default())).unwrap();
        for (serving, grpc_status, healthy) in [(1, "0", true), (2, "0", false), (1, "12", false)] {
            let addr = server(serving, grpc_status).await;
            let target: Uri = format!("http://{addr}/").parse().unwrap();
            let host = HeaderValue::from_str(&addr.to_string()).unwrap();
            let verdict = check(&transport, &target, &host).await;
            assert_eq!(
                verdict.is_ok(),
                healthy,
                "{serving} {grpc_status}: {verdict:?}"
            );
        }
    }
}
