//! OTLP over gRPC against a real HTTP/2 server (hyper's, in `viaduct-testkit`): the unary call's
//! framing, path and headers, and the `grpc-status` trailer deciding success.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use tokio::net::TcpListener;
use viaduct_observe::{Collector, Transport};
use viaduct_testkit::GrpcCollector;

fn collector(authority: String) -> Collector {
    Collector {
        transport: Transport::Grpc,
        authority,
        path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into(),
        headers: vec![("x-api-key".into(), "secret".into())],
        tls: None,
    }
}

/// The exporter is blocking and runs on its own thread.
async fn post(collector: Collector, message: &'static [u8]) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || collector.post(message))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_framed_and_succeeds_on_status_zero() {
    let server = GrpcCollector::start().await.unwrap();
    post(collector(server.authority()), b"spans").await.unwrap();
    let calls = server.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        call.path,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    assert_eq!(call.headers["content-type"], "application/grpc");
    assert_eq!(call.headers["te"], "trailers");
    assert_eq!(call.headers["x-api-key"], "secret");
    assert_eq!(&call.body[..], b"\0\0\0\0\x05spans");
    assert_eq!(call.message(), b"spans");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_is_an_error_with_its_message() {
    let server = GrpcCollector::start().await.unwrap();
    server.set_status("14");
    let err = post(collector(server.authority()), b"x").await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"14\"") && text.contains("collector overloaded"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_not_there_is_an_error() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert!(post(collector(authority), b"x").await.is_err());
}
