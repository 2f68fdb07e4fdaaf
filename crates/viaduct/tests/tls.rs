//! HTTPS: entry point redirections, TLS routers served only over TLS, certificates chosen by
//! SNI, ALPN, and certificates replaced on reload.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::time::Duration;

use viaduct_testkit::{EchoBackend, HttpClient, RawConnection, RequestSpec};

fn two_entry_points(redirect: &str) -> String {
    format!(
        r#"log:
  level: DEBUG
entryPoints:
  web:
    address: "{{{{addr:web}}}}"
{redirect}
  websecure:
    address: "{{{{addr:websecure}}}}"
providers:
  providersThrottleDuration: 100ms
  file:
    filename: "{{{{dynamic_file}}}}"
"#
    )
}

const ROUTES: &str = r#"
http:
  routers:
    plain:
      rule: "Host(`plain.test`)"
      service: echo
    secure:
      rule: "Host(`secure.test`)"
      service: echo
      tls: {}
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_point_redirection_keeps_host_path_and_query() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let redirect = "    http:\n      redirections:\n        entryPoint:\n          to: websecure\n          scheme: https";
    let proxy = common::start_with(&two_entry_points(redirect), ROUTES, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let spec = RequestSpec::get(&format!("{}/a/b?c=d", proxy.url("web"))).header("host", "plain.test:8000");
    let reply = common::wait_reply(&proxy, &client, spec, |r| r.status != 404).await;
    assert_eq!(reply.status, 301);
    let location = reply.header("location").unwrap();
    assert_eq!(location, format!("https://plain.test:{}/a/b?c=d", proxy.port("websecure")));

    let response = RawConnection::exchange(
        proxy.addr("web"),
        b"POST /form HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 308, "non-GET methods keep their method");
    assert_eq!(echo.hits(), 0, "nothing reaches the backend from a redirecting entry point");
}
