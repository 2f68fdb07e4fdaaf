//! Authentication middlewares end to end: basicAuth with real htpasswd hashes, digestAuth
//! with curl, forwardAuth with a real authentication server.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs htpasswd"]
async fn basic_auth_with_htpasswd_hashes() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let users_file = dir.path().join("users");
    std::fs::write(
        &users_file,
        format!("# a comment\n\n{}\n", htpasswd("m", "filed", "pw-file")),
    )
    .unwrap();
    let dynamic = format!(
        r#"{}
  middlewares:
    auth:
      basicAuth:
        users:
          - "{}"
          - "{}"
          - "{}"
          - "plain:secret"
        usersFile: "{{{{users_file}}}}"
    auth-options:
      basicAuth:
        users: ["{}"]
        realm: "private area"
        headerField: X-WebAuth-User
        removeHeader: true
{SERVICE}"#,
        routers(&[("auth.test", "auth"), ("opts.test", "auth-options")]),
        htpasswd("B", "bcrypt", "pw-bcrypt"),
        htpasswd("m", "apr1", "pw-apr1"),
        htpasswd("s", "sha", "pw-sha"),
        htpasswd("m", "opt", "pw-opt"),
    );
    let vars = [
        ("echo", echo.url()),
        ("users_file", users_file.display().to_string()),
    ];
    let proxy = start(&dynamic, &vars).await;
    let client = HttpClient::http1();
    let spec = send(&proxy, Method::GET, "auth.test", "/")
        .header("authorization", &basic("sha", "pw-sha"));
    common::wait_reply(&proxy, &client, spec, |r| r.status == 200).await;

    let reply = get(&proxy, &client, "auth.test", "/").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"traefik\"")
    );
    assert_eq!(reply.text(), "401 Unauthorized\n");
    for (user, password) in [
        ("bcrypt", "pw-bcrypt"),
        ("apr1", "pw-apr1"),
        ("sha", "pw-sha"),
        ("filed", "pw-file"),
    ] {
        let spec = send(&proxy, Method::GET, "auth.test", "/")
            .header("authorization", &basic(user, password));
        let reply = client.send(spec).await.unwrap();
        assert_eq!(reply.status, 200, "{user}");
        let report = reply.echo().unwrap();
        assert!(report.header("authorization").is_some(), "kept by default");
        let spec = send(&proxy, Method::GET, "auth.test", "/")
            .header("authorization", &basic(user, "wrong"));
        assert_eq!(
            client.send(spec).await.unwrap().status,
            401,
            "{user} with a wrong password"
        );
    }
    let spec = send(&proxy, Method::GET, "auth.test", "/")
        .header("authorization", &basic("plain", "secret"));
    assert_eq!(
        client.send(spec).await.unwrap().status,
        401,
        "plain text is no hash"
    );
    let spec =
        send(&proxy, Method::GET, "auth.test", "/").header("authorization", &basic("nobody", "x"));
    assert_eq!(client.send(spec).await.unwrap().status, 401);

    let reply = get(&proxy, &client, "opts.test", "/").await;
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"private area\"")
    );
    let spec = send(&proxy, Method::GET, "opts.test", "/")
        .header("authorization", &basic("opt", "pw-opt"));
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 200);
    let report = reply.echo().unwrap();
    assert_eq!(report.header("x-webauth-user"), Some("opt"));
    assert_eq!(report.header("authorization"), None, "removeHeader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth_with_curl() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let ha1 =
        |user: &str, realm: &str, password: &str| md5_hex(&format!("{user}:{realm}:{password}"));
    let dynamic = format!(
        r#"{}
  middlewares:
    digest:
      digestAuth:
        users:
          - "alice:traefik:{}"
          - "bob:other:{}"
        headerField: X-Auth-User
        removeHeader: true
{SERVICE}"#,
        routers(&[("digest.test", "digest")]),
        ha1("alice", "traefik", "wonderland"),
        ha1("bob", "other", "builder"),
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let reply = common::wait_reply(
        &proxy,
        &client,
        send(&proxy, Method::GET, "digest.test", "/"),
        |r| r.status == 401,
    )
    .await;
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Digest realm=\"traefik\", nonce=\""),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(", algorithm=\"MD5\", qop=\"auth\""),
        "{challenge}"
    );

    let curl = |user: &str, path: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "10",
                "--digest",
                "-u",
                user,
                "-H",
                "Host: digest.test",
                "-w",
                "\n%{http_code}",
                &format!("{}{path}", proxy.url("web")),
            ])
            .output()
            .expect("curl runs");
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    let (code, body) = curl("alice:wonderland", "/secret?q=1");
    assert_eq!(code, "200", "{body}");
    let report = viaduct_testkit::EchoReport::from_json(body.as_bytes()).unwrap();
    assert_eq!(report.header("x-auth-user"), Some("alice"));
    assert_eq!(report.header("authorization"), None);
    let (code, _) = curl("alice:wrong", "/");
    assert_eq!(code, "401");
    // bob's entry is for another realm than the middleware's.
    let (code, _) = curl("bob:builder", "/");
    assert_eq!(code, "401");

    // Right credentials with a nonce the server never issued (say, from before a restart):
    // a fresh challenge (Traefik does not mark it stale).
    let param = |name: &str| {
        let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        challenge[start..].split('"').next().unwrap().to_string()
    };
    let opaque = param("opaque");
    let ha1 = ha1("alice", "traefik", "wonderland");
    let authorization = |nonce: &str| {
        let ha2 = md5_hex("GET:/");
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:cn:auth:{ha2}"));
        format!(
            "Digest username=\"alice\", realm=\"traefik\", nonce=\"{nonce}\", uri=\"/\", \
             algorithm=MD5, response=\"{response}\", opaque=\"{opaque}\", qop=auth, \
             nc=00000001, cnonce=\"cn\""
        )
    };
    // The same computation with the nonce issued above is accepted, once.
    let issued = authorization(&param("nonce"));
    let spec = send(&proxy, Method::GET, "digest.test", "/").header("authorization", &issued);
    assert_eq!(client.send(spec.clone()).await.unwrap().status, 200);
    assert_eq!(
        client.send(spec).await.unwrap().status,
        401,
        "a replayed nonce count"
    );
    let authorization = authorization("bogus");
    let spec =
        send(&proxy, Method::GET, "digest.test", "/").header("authorization", &authorization);
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 401);
    let fresh = reply.header("www-authenticate").unwrap();
    assert!(
        fresh.starts_with("Digest realm=\"traefik\", nonce=\""),
        "{fresh}"
    );
    assert!(
        !fresh.contains("nonce=\"bogus\"") && !fresh.contains("stale"),
        "{fresh}"
    );
}

/// MD5 in hex, by `md5sum`.
fn md5_hex(text: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{text}' | md5sum")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_with_a_real_auth_server() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let auth = auth_server().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let dynamic = format!(
        r#"{}
  middlewares:
    auth:
      forwardAuth:
        address: "http://{{{{auth}}}}/verify?x=1"
        authResponseHeaders: ["X-Auth-User"]
        authResponseHeadersRegex: "^X-Auth-R"
        addAuthCookiesToResponse: ["session"]
    auth-body:
      forwardAuth:
        address: "http://{{{{auth}}}}/verify"
        forwardBody: true
        maxBodySize: 10
        preserveRequestMethod: true
    auth-preserve:
      forwardAuth:
        address: "http://{{{{auth}}}}/verify"
        preserveLocationHeader: true
    auth-trust:
      forwardAuth:
        address: "http://{{{{auth}}}}/verify"
        trustForwardHeader: true
        authRequestHeaders: ["X-Keep"]
    auth-down:
      forwardAuth:
        address: "http://{{{{closed}}}}/verify"
    auth-tls:
      forwardAuth:
        address: "{{{{auth_tls}}}}/check"
        tls:
          ca: "{{{{auth_ca}}}}"
    auth-tls-untrusted:
      forwardAuth:
        address: "{{{{auth_tls}}}}/check"
{SERVICE}"#,
        routers(&[
            ("auth.test", "auth"),
            ("body.test", "auth-body"),
            ("preserve.test", "auth-preserve"),
            ("trust.test", "auth-trust"),
            ("down.test", "auth-down"),
            ("tls.test", "auth-tls"),
            ("untrusted.test", "auth-tls-untrusted"),
        ])
    );
    // An HTTPS authentication server: the TLS echo backend answers 200 to anything.
    let tls_auth = EchoBackend::start_tls("tls-auth").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("auth-ca.pem");
    std::fs::write(&ca_file, tls_auth.ca_pem().unwrap()).unwrap();
    let vars = [
        ("echo", echo.url()),
        ("auth", auth.addr.to_string()),
        ("closed", closed.to_string()),
        ("auth_tls", tls_auth.https_url()),
        ("auth_ca", ca_file.display().to_string()),
    ];
    let proxy = common::start_with(&trusting_loopback(), &dynamic, &vars).await;
    let client = HttpClient::http1();
    let spec = send(&proxy, Method::GET, "auth.test", "/ok?q=1")
        .header("x-auth-user", "forged")
        .header("x-auth-role-old", "forged");
    let reply = common::wait_reply(&proxy, &client, spec, |r| r.status == 200).await;
    let report = reply.echo().unwrap();
    assert_eq!(report.header("x-auth-user"), Some("alice"));
    assert_eq!(report.header("x-auth-role"), Some("admin"));
    assert_eq!(
        report.header("x-auth-role-old"),
        None,
        "removed by the regex"
    );
    assert_eq!(report.header("x-auth-ignored"), None);
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["session=abc; Path=/"]);
    let seen = auth.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/verify?x=1");
    assert_eq!(seen.header("host"), Some(auth.addr.to_string().as_str()));
    assert_eq!(seen.header("x-forwarded-method"), Some("GET"));
    assert_eq!(seen.header("x-forwarded-uri"), Some("/ok?q=1"));
    assert_eq!(seen.header("x-forwarded-host"), Some("auth.test"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        seen.header("x-auth-user"),
        Some("forged"),
        "the client's headers go to the auth server"
    );

    let reply = get(&proxy, &client, "auth.test", "/deny").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.text(), "denied by auth");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"auth\"")
    );
    assert_eq!(reply.header("x-auth-extra"), Some("1"));
    assert_eq!(reply.backend(), None);

    let reply = get(&proxy, &client, "auth.test", "/redirect").await;
    assert_eq!(reply.status, 302);
    let absolute = format!("http://{}/login?from=x", auth.addr);
    assert_eq!(reply.header("location"), Some(absolute.as_str()));
    let reply = get(&proxy, &client, "preserve.test", "/redirect").await;
    assert_eq!(reply.header("location"), Some("/login?from=x"));

    let spec = send(&proxy, Method::POST, "body.test", "/upload")
        .body(viaduct_testkit::RequestBody::Bytes("hello".into()));
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.echo().unwrap().body_len,
        5,
        "the body still reaches the backend"
    );
    let seen = auth.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body, b"hello");
    let spec = send(&proxy, Method::POST, "body.test", "/upload").body(
        viaduct_testkit::RequestBody::Bytes("more than ten bytes".into()),
    );
    assert_eq!(
        client.send(spec).await.unwrap().status,
        401,
        "over maxBodySize"
    );

    let spec = send(&proxy, Method::GET, "trust.test", "/real")
        .header("x-forwarded-uri", "/claimed")
        .header("x-forwarded-for", "192.0.2.1")
        .header("x-keep", "k")
        .header("x-drop", "d");
    assert_eq!(client.send(spec).await.unwrap().status, 200);
    let seen = auth.last();
    assert_eq!(seen.header("x-forwarded-uri"), Some("/claimed"));
    assert_eq!(seen.header("x-forwarded-for"), Some("192.0.2.1, 127.0.0.1"));
    assert_eq!(seen.header("x-keep"), Some("k"));
    assert_eq!(seen.header("x-drop"), None, "not in authRequestHeaders");

    let reply = get(&proxy, &client, "down.test", "/").await;
    assert_eq!(reply.status, 500);

    let reply = get(&proxy, &client, "tls.test", "/").await;
    assert_eq!(
        reply.status, 200,
        "HTTPS auth server trusted through tls.ca"
    );
    assert_eq!(reply.backend(), Some("echo"));
    let reply = get(&proxy, &client, "untrusted.test", "/").await;
    assert_eq!(
        reply.status, 500,
        "its certificate is not trusted without tls.ca"
    );
}
