//! The inline client against a scripted raw-TCP backend on 127.0.0.1.

mod backend;

use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpListener;

use crate::{full_body, Body, Transport, TransportSettings};
use backend::{Backend, Step};

fn settings() -> TransportSettings {
    TransportSettings {
        insecure_skip_verify: false,
        root_cas: Vec::new(),
        server_name: None,
        certificates: Vec::new(),
        max_idle_per_host: 4,
        dial_timeout: Some(Duration::from_secs(2)),
        response_header_timeout: None,
        idle_conn_timeout: Some(Duration::from_secs(90)),
        read_idle_timeout: None,
        ping_timeout: None,
        disable_http2: false,
        peer_cert_uri: None,
        use_hyper_client: false,
    }
}

fn transport() -> Transport {
    Transport::new(settings()).unwrap()
}

fn get(url: &str) -> Request<Body> {
    Request::get(url).body(Body::Empty).unwrap()
}

async fn send(transport: &Transport, request: Request<Body>) -> Response<Body> {
    tokio::time::timeout(Duration::from_secs(5), transport.send(request, false))
        .await
        .expect("the exchange finished in time")
        .expect("the exchange succeeded")
}

async fn send_err(transport: &Transport, request: Request<Body>) -> crate::ProxyError {
    tokio::time::timeout(Duration::from_secs(5), transport.send(request, false))
        .await
        .expect("the exchange finished in time")
        .expect_err("the exchange failed")
}

async fn text(response: Response<Body>) -> String {
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("the body finished in time")
        .expect("the body is whole");
    String::from_utf8(body.to_bytes().to_vec()).unwrap()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test]
async fn content_length_body_and_request_head() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-B: 1\r\n\r\nhello"),
    ]])
    .await;
    let transport = transport();
    let request = Request::get(backend.url("/a?b=c"))
        .header("host", "example.com")
        .body(Body::Empty)
        .unwrap();
    let response = send(&transport, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-b"], "1");
    assert_eq!(text(response).await, "hello");
    assert_eq!(
        backend.received(),
        vec!["GET /a?b=c HTTP/1.1\r\nhost: example.com\r\n\r\n"]
    );
}

#[tokio::test]
async fn chunked_body_with_extensions_and_trailers() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Step::Send(b"5;name=value\r\nhello\r\n6\r\n world\r\n"),
        Step::Pause(Duration::from_millis(20)),
        Step::Send(b"0\r\nx-checksum: 42\r\n\r\n"),
        Step::Read,
        Step::Send(OK),
    ]])
    .await;
    let transport = transport();
    let response = send(&transport, get(&backend.url("/"))).await;
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "42");
    assert_eq!(&collected.to_bytes()[..], b"hello world");
    // The connection was handed back once the last chunk was read.
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 1);
}

#[tokio::test]
async fn close_delimited_body_is_read_to_the_end_and_not_reused() {
    let backend = Backend::start(vec![
        vec![
            Step::Read,
            Step::Send(b"HTTP/1.1 200 OK\r\n\r\nuntil "),
            Step::Send(b"the end"),
            Step::Close,
        ],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let transport = transport();
    let response = send(&transport, get(&backend.url("/"))).await;
    assert_eq!(text(response).await, "until the end");
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn head_204_and_304_have_no_body_and_keep_the_connection() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        Step::Read,
        Step::Send(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Step::Read,
        Step::Send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"),
        Step::Read,
        Step::Send(OK),
    ]])
    .await;
    let transport = transport();
    let head = Request::head(backend.url("/")).body(Body::Empty).unwrap();
    let response = send(&transport, head).await;
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(text(response).await, "");
    let response = send(&transport, get(&backend.url("/"))).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(text(response).await, "");
    let response = send(&transport, get(&backend.url("/"))).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(text(response).await, "");
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 1);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
        Step::Send(OK),
    ]])
    .await;
    let response = send(&transport(), get(&backend.url("/"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("link"));
    assert_eq!(text(response).await, "ok");
}

#[tokio::test]
async fn keep_alive_reuses_the_connection() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(OK),
        Step::Read,
        Step::Send(OK),
        Step::Read,
        Step::Send(OK),
    ]])
    .await;
    let transport = transport();
    for _ in 0..3 {
        assert_eq!(
            text(send(&transport, get(&backend.url("/"))).await).await,
            "ok"
        );
    }
    assert_eq!(backend.accepted(), 1);
}

#[tokio::test]
async fn connection_close_is_not_reused() {
    let backend = Backend::start(vec![
        vec![
            Step::Read,
            Step::Send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
        ],
        vec![Step::Read, Step::Send(OK), Step::Read, Step::Send(OK)],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let transport = transport();
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 2);
    // A request asking to close is not followed by another on its connection either.
    let closing = Request::get(backend.url("/"))
        .header("connection", "close")
        .body(Body::Empty)
        .unwrap();
    assert_eq!(text(send(&transport, closing).await).await, "ok");
    assert_eq!(backend.accepted(), 2);
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 3);
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_backend_is_retried_transparently() {
    // The backend reads the second request and closes without answering: the keep-alive
    // race where the backend's idle timeout fires just as the request arrives.
    let backend = Backend::start(vec![
        vec![Step::Read, Step::Send(OK), Step::Read, Step::Close],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let transport = transport();
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 2);
    assert_eq!(backend.received().len(), 3);
}

#[tokio::test]
async fn a_pooled_connection_closed_while_idle_is_not_used() {
    let backend = Backend::start(vec![
        vec![Step::Read, Step::Send(OK), Step::Close],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let transport = transport();
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let post = Request::post(backend.url("/"))
        .body(full_body("data"))
        .unwrap();
    assert_eq!(text(send(&transport, post).await).await, "ok");
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn request_body_with_a_known_length() {
    let backend = Backend::start(vec![vec![Step::Read, Step::Send(OK)]]).await;
    let post = Request::post(backend.url("/upload"))
        .header("content-length", "5")
        .body(full_body("hello"))
        .unwrap();
    assert_eq!(text(send(&transport(), post).await).await, "ok");
    assert_eq!(
        backend.received(),
        vec!["POST /upload HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello"]
    );
}

#[tokio::test]
async fn request_body_of_unknown_length_is_chunked() {
    // A chunked response body from one backend, streamed as the request body to another:
    // the proxy's case, with a body whose length nobody knows in advance.
    let source = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
        Step::Pause(Duration::from_millis(20)),
        Step::Send(b"2\r\nde\r\n0\r\n\r\n"),
    ]])
    .await;
    let sink = Backend::start(vec![vec![Step::Read, Step::Send(OK)]]).await;
    let transport = transport();
    let streamed = send(&transport, get(&source.url("/"))).await.into_body();
    let post = Request::put(sink.url("/")).body(streamed).unwrap();
    assert_eq!(text(send(&transport, post).await).await, "ok");
    assert_eq!(
        sink.received(),
        vec![
            "PUT / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        ]
    );
}

#[tokio::test]
async fn empty_post_keeps_its_zero_content_length() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(OK),
        Step::Read,
        Step::Send(OK),
    ]])
    .await;
    let transport = transport();
    let post = Request::post(backend.url("/"))
        .header("content-length", "0")
        .body(Body::Empty)
        .unwrap();
    assert_eq!(text(send(&transport, post).await).await, "ok");
    let post = Request::post(backend.url("/")).body(Body::Empty).unwrap();
    assert_eq!(text(send(&transport, post).await).await, "ok");
    assert_eq!(
        backend.received(),
        vec![
            "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\n\r\n"
        ]
    );
}

#[tokio::test]
async fn differing_content_lengths_are_a_bad_gateway() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
    ]])
    .await;
    let err = send_err(&transport(), get(&backend.url("/"))).await;
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert_eq!(err.blame, crate::Blame::Upstream);
    assert!(!err.retryable);
}

#[tokio::test]
async fn a_response_head_over_the_limit_is_a_bad_gateway() {
    static HUGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let huge = HUGE.get_or_init(|| {
        let mut head = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
        head.resize(super::response::MAX_HEAD + 1024, b'a');
        head
    });
    let backend = Backend::start(vec![vec![Step::Read, Step::Send(huge)]]).await;
    let err = send_err(&transport(), get(&backend.url("/"))).await;
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn response_header_timeout_is_a_gateway_timeout() {
    let backend = Backend::start(vec![vec![Step::Read, Step::Pause(Duration::from_secs(3))]]).await;
    let transport = Transport::new(TransportSettings {
        response_header_timeout: Some(Duration::from_millis(200)),
        ..settings()
    })
    .unwrap();
    let err = send_err(&transport, get(&backend.url("/"))).await;
    assert_eq!(err.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_bad_gateway() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = send_err(&transport(), get(&format!("http://{addr}/"))).await;
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert!(err.retryable);
}

#[tokio::test]
async fn a_body_dropped_midway_closes_its_connection() {
    let backend = Backend::start(vec![
        vec![
            Step::Read,
            Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
        ],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let transport = transport();
    let mut body = send(&transport, get(&backend.url("/"))).await.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"hello");
    drop(body);
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 2);
}

#[tokio::test]
async fn a_truncated_body_is_an_error() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
        Step::Close,
    ]])
    .await;
    let response = send(&transport(), get(&backend.url("/"))).await;
    assert!(response.into_body().collect().await.is_err());
}

#[tokio::test]
async fn a_switching_protocols_answer_is_refused() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
    ]])
    .await;
    let err = send_err(&transport(), get(&backend.url("/"))).await;
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn the_hyper_client_can_be_forced() {
    let backend = Backend::start(vec![vec![Step::Read, Step::Send(OK)]]).await;
    let transport = Transport::new(TransportSettings {
        use_hyper_client: true,
        ..settings()
    })
    .unwrap();
    let response = send(&transport, get(&backend.url("/"))).await;
    assert!(matches!(response.body(), Body::Incoming(_)));
    assert_eq!(text(response).await, "ok");
}

#[tokio::test]
async fn servers_cache_their_host_pool() {
    let backend = Backend::start(vec![vec![
        Step::Read,
        Step::Send(OK),
        Step::Read,
        Step::Send(OK),
    ]])
    .await;
    let transport = transport();
    let server = crate::Server::parse(&backend.url(""), 1, false).unwrap();
    for _ in 0..2 {
        let response = transport
            .send_to(get(&backend.url("/")), &server)
            .await
            .unwrap();
        assert_eq!(text(response).await, "ok");
    }
    let host = server.h1_host.get().unwrap();
    assert_eq!(host.idle_count(), 1);
    assert_eq!(backend.accepted(), 1);
}

#[tokio::test]
async fn expired_and_disabled_idle_connections_are_not_reused() {
    let backend = Backend::start(vec![
        vec![Step::Read, Step::Send(OK)],
        vec![Step::Read, Step::Send(OK)],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let expiring = Transport::new(TransportSettings {
        idle_conn_timeout: Some(Duration::from_millis(30)),
        ..settings()
    })
    .unwrap();
    assert_eq!(
        text(send(&expiring, get(&backend.url("/"))).await).await,
        "ok"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        text(send(&expiring, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 2);

    let no_reuse = Transport::new(TransportSettings {
        max_idle_per_host: 0,
        ..settings()
    })
    .unwrap();
    assert_eq!(
        text(send(&no_reuse, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 3);
}

#[tokio::test]
async fn a_malformed_chunked_body_is_an_error_and_closes_the_connection() {
    let backend = Backend::start(vec![
        vec![
            Step::Read,
            Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX\r\n"),
        ],
        vec![
            Step::Read,
            Step::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ],
        vec![Step::Read, Step::Send(OK)],
    ])
    .await;
    let transport = transport();
    for _ in 0..2 {
        let response = send(&transport, get(&backend.url("/"))).await;
        assert!(response.into_body().collect().await.is_err());
    }
    assert_eq!(
        text(send(&transport, get(&backend.url("/"))).await).await,
        "ok"
    );
    assert_eq!(backend.accepted(), 3);
}
