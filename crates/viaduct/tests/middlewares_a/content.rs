//! Response typing, path encodings and client certificates end to end: contentType,
//! encodedCharacters, passTLSClientCert.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_detection_and_encoded_characters() {
    let backend = untyped_backend().await;
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"http:
  routers:
    sniffed:
      rule: "Host(`sniff.test`)"
      service: untyped
      middlewares: [detect]
    raw:
      rule: "Host(`raw.test`)"
      service: untyped
    strict:
      rule: "Host(`strict.test`)"
      service: echo
      middlewares: [strict]
    lax:
      rule: "Host(`lax.test`)"
      service: echo
      middlewares: [lax]
  middlewares:
    detect:
      contentType: {{}}
    strict:
      encodedCharacters:
        allowEncodedHash: false
    lax:
      encodedCharacters:
        allowEncodedSlash: true
        allowEncodedPercent: true
  services:
    untyped:
      loadBalancer:
        servers:
          - url: "{{{{untyped}}}}"
{}"#,
        SERVICE.trim_start_matches("  services:\n")
    );
    let static_yaml = common::static_config(
        "    http:\n      encodedCharacters:\n        allowEncodedSlash: true\n        allowEncodedPercent: true\n        allowEncodedSemicolon: true",
    );
    let vars = [("untyped", backend.url.clone()), ("echo", echo.url())];
    let proxy = if proxy_is_traefik() {
        common::start_with(&static_yaml, &dynamic, &vars).await
    } else {
        start(&dynamic, &vars).await
    };
    let client = HttpClient::http1();
    let spec = send(&proxy, Method::GET, "sniff.test", "/html");
    let reply = common::wait_reply(&proxy, &client, spec, |r| r.status == 200).await;
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(reply.text(), "  <HTML><body>hi</body></HTML>");
    let reply = get(&proxy, &client, "sniff.test", "/png").await;
    assert_eq!(reply.header("content-type"), Some("image/png"));
    let reply = get(&proxy, &client, "sniff.test", "/text").await;
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let reply = get(&proxy, &client, "sniff.test", "/typed").await;
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let reply = get(&proxy, &client, "raw.test", "/html").await;
    assert_eq!(
        reply.header("content-type"),
        None,
        "Traefik v3 does not sniff by default"
    );

    wait_backend(&proxy, &client, "lax.test", "/", "echo").await;
    for path in ["/a%2Fb", "/a%2fb", "/a%25b", "/a%3Bb"] {
        let reply = get(&proxy, &client, "strict.test", path).await;
        assert_eq!(reply.status, 400, "{path}");
    }
    assert_eq!(
        get(&proxy, &client, "strict.test", "/a%20b").await.status,
        200
    );
    assert_eq!(
        get(&proxy, &client, "lax.test", "/a%2Fb%25").await.status,
        200
    );
    assert_eq!(get(&proxy, &client, "lax.test", "/a%3Bb").await.status, 400);
}

fn proxy_is_traefik() -> bool {
    common::kind().is_traefik()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_tls_client_cert_pem_and_info() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client_der = mtls_files(dir.path());
    let path = |name: &str| dir.path().join(name).display().to_string();
    let dynamic = format!(
        r#"http:
  routers:
    secure:
      rule: "Host(`secure.test`)"
      service: echo
      middlewares: [pass]
      tls:
        options: mtls
  middlewares:
    pass:
      passTLSClientCert:
        pem: true
        info:
          notAfter: true
          notBefore: true
          sans: true
          serialNumber: true
          subject:
            country: true
            province: true
            locality: true
            organization: true
            organizationalUnit: true
            commonName: true
            serialNumber: true
            domainComponent: true
          issuer:
            country: true
            organization: true
            commonName: true
{SERVICE}tls:
  certificates:
    - certFile: "{}"
      keyFile: "{}"
  options:
    mtls:
      clientAuth:
        caFiles: ["{}"]
        clientAuthType: RequireAndVerifyClientCert
"#,
        path("server.pem"),
        path("server.key"),
        path("ca.pem"),
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let port = proxy.addr("web").port();
    let curl = || {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-k",
                "--max-time",
                "5",
                "--cert",
                &path("client.pem"),
                "--key",
                &path("client.key"),
                "--resolve",
                &format!("secure.test:{port}:127.0.0.1"),
                "-H",
                "X-Forwarded-Tls-Client-Cert-Info: forged",
                &format!("https://secure.test:{port}/"),
            ])
            .output()
            .expect("curl runs");
        String::from_utf8(out.stdout).unwrap()
    };
    let body = proxy
        .wait_for("the mTLS router", common::ROUTING_TIMEOUT, || {
            let body = curl();
            async move {
                match viaduct_testkit::EchoReport::from_json(body.as_bytes()) {
                    Ok(_) => Ok(Some(body)),
                    Err(_) => Err(body),
                }
            }
        })
        .await
        .unwrap();
    let report = viaduct_testkit::EchoReport::from_json(body.as_bytes()).unwrap();
    assert_eq!(
        report.header("x-forwarded-tls-client-cert"),
        Some(base64(&client_der).as_str())
    );
    let info = report.header("x-forwarded-tls-client-cert-info").unwrap();
    assert!(
        !info.contains(' ') && !info.contains('"'),
        "query-escaped: {info}"
    );
    assert_eq!(
        query_unescape(info),
        "Subject=\"DC=example,C=FR,ST=Rhone,L=Lyon,O=Viaduct,OU=Tests,SN=SN-42,CN=client.test\";\
         Issuer=\"C=FR,O=Viaduct CA,CN=test client CA\";SerialNumber=\"66051\";\
         NB=\"1704153600\";NA=\"2019772800\";\
         SAN=\"client.test,me@client.test,127.0.0.9,spiffe://client/test\""
    );
}
