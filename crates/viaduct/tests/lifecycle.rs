//! Process lifecycle: graceful shutdown drains in-flight requests.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::{start_with, static_config, wait_backend, ONE_ROUTE};
use viaduct_testkit::{EchoBackend, HttpClient, RequestSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish_then_exits_zero() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let extra = "    transport:\n      lifeCycle:\n        graceTimeOut: 5s";
    let proxy = start_with(&static_config(extra), ONE_ROUTE, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "app.test", "/", "echo").await;
    let before = echo.hits();

    let slow =
        RequestSpec::get(&format!("{}/slow", proxy.url("web"))).header("x-echo-delay-ms", "1500");
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.send(slow).await }
    });
    proxy
        .wait_for(
            "the slow request to reach the backend",
            Duration::from_secs(5),
            || async { Ok((echo.hits() > before).then_some(())) },
        )
        .await
        .unwrap();
    let signalled = Instant::now();
    proxy.sigterm().unwrap();

    let reply = in_flight.await.unwrap().unwrap();
    assert_eq!(reply.status, 200, "the in-flight request was cut");
    assert_eq!(reply.backend(), Some("echo"));
    let status = proxy.wait_exit(Duration::from_secs(8)).await.unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(7),
        "took {:?} to exit",
        signalled.elapsed()
    );
}
