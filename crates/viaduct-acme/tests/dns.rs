//! lego's generic DNS providers: what `exec` runs and what `httpreq` posts.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use viaduct_acme::{DnsProvider, DnsRecord};

fn record() -> DnsRecord {
    DnsRecord {
        domain: "example.com".into(),
        token: "tok".into(),
        key_authorization: "tok.thumb".into(),
        value: "digest".into(),
    }
}

#[tokio::test]
async fn exec_runs_the_program_with_legos_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = script.display().to_string();

    let provider = DnsProvider::Exec {
        path: path.clone(),
        raw: false,
    };
    provider.present(&record()).await.unwrap();
    provider.cleanup(&record()).await.unwrap();
    let raw = DnsProvider::Exec { path, raw: true };
    raw.present(&record()).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "present _acme-challenge.example.com. digest\ncleanup _acme-challenge.example.com. digest\npresent example.com tok tok.thumb\n"
    );
}

#[tokio::test]
async fn exec_failure_reports_the_exit_status_and_stderr() {
    let provider = DnsProvider::Exec {
        path: "/bin/false".into(),
        raw: false,
    };
    let error = provider.present(&record()).await.unwrap_err().to_string();
    assert!(
        error.contains("exec") && error.contains("_acme-challenge.example.com."),
        "{error}"
    );
}

#[tokio::test]
async fn httpreq_posts_fqdn_and_value_with_basic_auth() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/dns", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            seen.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                if body.ends_with('}') {
                    break;
                }
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8(seen).unwrap()
    });
    let provider = DnsProvider::HttpReq {
        endpoint,
        raw: false,
        credentials: Some(("user".into(), "secret".into())),
    };
    provider.present(&record()).await.unwrap();
    let request = server.await.unwrap();
    assert!(
        request.starts_with("POST /dns/present HTTP/1.1"),
        "{request}"
    );
    assert!(
        request.contains("authorization: Basic dXNlcjpzZWNyZXQ="),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"fqdn": "_acme-challenge.example.com.", "value": "digest"})
    );
}

#[test]
fn other_providers_are_refused_by_name() {
    let error = DnsProvider::from_name("cloudflare")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cloudflare") && error.contains("not supported yet"),
        "{error}"
    );
}
