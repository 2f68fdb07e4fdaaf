//! Middlewares, part A, end to end: headers, redirects, path rewriting, IP allow lists,
//! authentication, content type, encoded characters, client certificates, forward auth.
//! Each test passes against Traefik too (`VIADUCT_E2E_PROXY=traefik`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::{get, start, wait_backend};
use http::Method;
use viaduct_testkit::{EchoBackend, HttpClient, RequestSpec};

const SERVICE: &str = r#"
  services:
    echo:
      loadBalancer:
        servers:
          - url: "{{echo}}"
"#;

/// One router per `(host, middleware list)`, all to the echo service.
fn routers(routes: &[(&str, &str)]) -> String {
    let mut yaml = String::from("http:\n  routers:\n");
    for (i, (host, middlewares)) in routes.iter().enumerate() {
        yaml.push_str(&format!(
            "    r{i}:\n      rule: \"Host(`{host}`)\"\n      service: echo\n      middlewares: [{middlewares}]\n"
        ));
    }
    yaml
}

fn send(
    proxy: &viaduct_testkit::ProxyUnderTest,
    method: Method,
    host: &str,
    path: &str,
) -> RequestSpec {
    RequestSpec::new(method, &format!("{}{path}", proxy.url("web"))).header("host", host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_custom_cors_and_security() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"{}
  middlewares:
    custom:
      headers:
        customRequestHeaders:
          X-Added: "yes"
          X-Drop: ""
        customResponseHeaders:
          X-Resp: "r"
          X-Backend: ""
          X-Frame-Options: "SAMEORIGIN"
        frameDeny: true
        contentTypeNosniff: true
        browserXssFilter: true
        stsSeconds: 300
        stsIncludeSubdomains: true
        stsPreload: true
        referrerPolicy: "no-referrer"
        permissionsPolicy: "camera=()"
        contentSecurityPolicy: "default-src 'self'"
        contentSecurityPolicyReportOnly: "img-src 'none'"
    forced:
      headers:
        stsSeconds: 60
        forceSTSHeader: true
        customBrowserXSSValue: "0"
    proxied-ssl:
      headers:
        stsSeconds: 60
        sslProxyHeaders:
          X-Forwarded-Proto: https
    cors:
      headers:
        accessControlAllowMethods: ["GET", "PUT"]
        accessControlAllowHeaders: ["X-A", "X-B"]
        accessControlAllowOriginList: ["https://a.test"]
        accessControlAllowOriginListRegex: ["^https://.*\\.b\\.test$"]
        accessControlExposeHeaders: ["X-E"]
        accessControlAllowCredentials: true
        accessControlMaxAge: 100
        addVaryHeader: true
    hosts:
      headers:
        allowedHosts: ["good.test"]
        hostsProxyHeaders: ["X-Custom-Host"]
{SERVICE}"#,
        routers(&[
            ("custom.test", "custom"),
            ("forced.test", "forced"),
            ("ssl.test", "proxied-ssl"),
            ("cors.test", "cors"),
            ("good.test", "hosts"),
            ("bad.test", "hosts"),
        ])
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "forced.test", "/", "echo").await;

    // Custom headers, and security headers over plain HTTP (no STS without HTTPS).
    let spec = send(&proxy, Method::GET, "custom.test", "/").header("x-drop", "gone");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 200);
    let report = reply.echo().unwrap();
    assert_eq!(report.header("x-added"), Some("yes"));
    assert_eq!(report.header("x-drop"), None);
    assert_eq!(reply.header("x-resp"), Some("r"));
    assert_eq!(reply.header("x-backend"), None, "an empty value removes");
    assert_eq!(
        reply.header("x-frame-options"),
        Some("SAMEORIGIN"),
        "custom wins over frameDeny"
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("x-xss-protection"), Some("1; mode=block"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(reply.header("permissions-policy"), Some("camera=()"));
    assert_eq!(
        reply.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(
        reply.header("content-security-policy-report-only"),
        Some("img-src 'none'")
    );
    assert_eq!(
        reply.header("strict-transport-security"),
        None,
        "plain HTTP"
    );

    let reply = get(&proxy, &client, "forced.test", "/").await;
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=60")
    );
    assert_eq!(reply.header("x-xss-protection"), Some("0"));

    let reply = get(&proxy, &client, "ssl.test", "/").await;
    assert_eq!(reply.header("strict-transport-security"), None);
    // The entry point sets X-Forwarded-Proto itself (http), so a client's claim is not
    // trusted; the header therefore never says https here.
    let spec = send(&proxy, Method::GET, "ssl.test", "/").header("x-forwarded-proto", "https");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.header("strict-transport-security"), None);

    // CORS: a preflight is answered by the proxy.
    let before = echo.hits();
    let spec = send(&proxy, Method::OPTIONS, "cors.test", "/")
        .header("origin", "https://x.b.test")
        .header("access-control-request-method", "PUT");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(echo.hits(), before, "a preflight never reaches the backend");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://x.b.test")
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET,PUT")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("X-A,X-B")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("100"));
    assert_eq!(reply.body.len(), 0);

    // An OPTIONS without Access-Control-Request-Method goes to the backend.
    let spec = send(&proxy, Method::OPTIONS, "cors.test", "/").header("origin", "https://a.test");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.backend(), Some("echo"));

    // A simple request: the headers are added to the backend's answer.
    let spec = send(&proxy, Method::GET, "cors.test", "/").header("origin", "https://a.test");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://a.test")
    );
    assert_eq!(reply.header("access-control-expose-headers"), Some("X-E"));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(reply.header("vary"), Some("Origin"));
    let spec = send(&proxy, Method::GET, "cors.test", "/").header("origin", "https://evil.test");
    let reply = client.send(spec).await.unwrap();
    assert_eq!(reply.header("access-control-allow-origin"), None);

    // Allowed hosts: the Host, or the first proxy header that is set.
    assert_eq!(get(&proxy, &client, "good.test", "/").await.status, 200);
    let reply = get(&proxy, &client, "bad.test", "/").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.text(), "Bad Host\n");
    let spec = send(&proxy, Method::GET, "bad.test", "/").header("x-custom-host", "good.test");
    assert_eq!(client.send(spec).await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_scheme_and_regex() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"{}
  middlewares:
    to-https:
      redirectScheme:
        scheme: https
    to-https-port:
      redirectScheme:
        scheme: https
        port: "8443"
        permanent: true
    stay-http:
      redirectScheme:
        scheme: http
        port: "80"
    regex:
      redirectRegex:
        regex: "^http://([^/:]+)(:[0-9]+)?/old/(?P<rest>.*)"
        replacement: "https://${{1}}/new/${{rest}}"
    regex-permanent:
      redirectRegex:
        regex: "^http://[^/]+/(.*)"
        replacement: "http://elsewhere.test/$1"
        permanent: true
{SERVICE}"#,
        routers(&[
            ("a.test", "to-https"),
            ("b.test", "to-https-port"),
            ("c.test", "stay-http"),
            ("d.test", "regex"),
            ("e.test", "regex-permanent"),
        ])
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "c.test", "/", "echo").await;

    let reply = get(&proxy, &client, "a.test", "/p?q=1").await;
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("https://a.test/p?q=1"));
    assert_eq!(reply.text(), "Found");
    let reply = client
        .send(send(&proxy, Method::POST, "a.test", "/p"))
        .await
        .unwrap();
    assert_eq!(reply.status, 307, "not GET: the method must be kept");
    // The port of the Host is dropped when none is configured.
    let reply = get(&proxy, &client, "a.test:8080", "/p").await;
    assert_eq!(reply.header("location"), Some("https://a.test/p"));

    let reply = get(&proxy, &client, "b.test:8080", "/x").await;
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("https://b.test:8443/x"));
    assert_eq!(reply.text(), "Moved Permanently");
    let reply = client
        .send(send(&proxy, Method::PUT, "b.test", "/x"))
        .await
        .unwrap();
    assert_eq!(reply.status, 308);

    // Already on the target scheme and (default) port: no redirect.
    let reply = get(&proxy, &client, "c.test", "/x").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.backend(), Some("echo"));
    let reply = get(&proxy, &client, "c.test:80", "/x").await;
    assert_eq!(reply.status, 200);

    let reply = get(&proxy, &client, "d.test:81", "/old/a/b?c=d").await;
    assert_eq!(reply.status, 302);
    assert_eq!(reply.header("location"), Some("https://d.test/new/a/b?c=d"));
    let reply = get(&proxy, &client, "d.test", "/other").await;
    assert_eq!(reply.status, 200, "no match: passed on");

    let reply = get(&proxy, &client, "e.test", "/z").await;
    assert_eq!(reply.status, 301);
    assert_eq!(reply.header("location"), Some("http://elsewhere.test/z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_path_and_strip_prefix_regex() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"{}
  middlewares:
    replace:
      replacePath:
        path: /fixed
    replace-regex:
      replacePathRegex:
        regex: "^/foo/(.*)"
        replacement: "/bar/$1"
    strip-regex:
      stripPrefixRegex:
        regex: ["/nomatch", "/products/[a-z0-9]+"]
{SERVICE}"#,
        routers(&[
            ("replace.test", "replace"),
            ("regex.test", "replace-regex"),
            ("strip.test", "strip-regex"),
        ])
    );
    let proxy = start(&dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    let reply = wait_backend(&proxy, &client, "replace.test", "/orig/path?x=1", "echo").await;
    let report = reply.echo().unwrap();
    assert_eq!(report.uri, "/fixed?x=1");
    assert_eq!(report.header("x-replaced-path"), Some("/orig/path"));

    let report = get(&proxy, &client, "regex.test", "/foo/a/b?y=2")
        .await
        .echo()
        .unwrap();
    assert_eq!(report.uri, "/bar/a/b?y=2");
    assert_eq!(report.header("x-replaced-path"), Some("/foo/a/b"));
    let report = get(&proxy, &client, "regex.test", "/other")
        .await
        .echo()
        .unwrap();
    assert_eq!(report.uri, "/other");
    assert_eq!(report.header("x-replaced-path"), None);

    let report = get(&proxy, &client, "strip.test", "/products/abc12/item?z")
        .await
        .echo()
        .unwrap();
    assert_eq!(report.uri, "/item?z");
    assert_eq!(report.header("x-forwarded-prefix"), Some("/products/abc12"));
    let report = get(&proxy, &client, "strip.test", "/products/abc")
        .await
        .echo()
        .unwrap();
    assert_eq!(report.uri, "/");
    let report = get(&proxy, &client, "strip.test", "/x/products/abc")
        .await
        .echo()
        .unwrap();
    assert_eq!(
        report.uri, "/x/products/abc",
        "a match that is not a prefix is ignored"
    );
    assert_eq!(report.header("x-forwarded-prefix"), None);
}

/// The entry point trusts no forwarded headers by default and would drop a client's
/// `X-Forwarded-For`; these tests trust loopback so that the client can play a proxy chain.
fn trusting_loopback() -> String {
    common::static_config(
        "    forwardedHeaders:\n      trustedIPs: [\"127.0.0.1/32\", \"::1/128\"]",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_allow_list_with_strategies() {
    let echo = EchoBackend::start("echo").await.unwrap();
    let dynamic = format!(
        r#"{}
  middlewares:
    loopback:
      ipAllowList:
        sourceRange: ["127.0.0.1", "::1"]
    elsewhere:
      ipAllowList:
        sourceRange: ["192.0.2.0/24"]
        rejectStatusCode: 404
    white-list:
      ipWhiteList:
        sourceRange: ["192.0.2.0/24"]
    depth:
      ipAllowList:
        sourceRange: ["198.51.100.0/24"]
        ipStrategy:
          depth: 2
    excluded:
      ipAllowList:
        sourceRange: ["203.0.113.7"]
        ipStrategy:
          excludedIPs: ["10.0.0.0/8", "127.0.0.1"]
    subnet:
      ipAllowList:
        sourceRange: ["2001:db8:1:2::/128"]
        ipStrategy:
          depth: 1
          ipv6Subnet: 64
{SERVICE}"#,
        routers(&[
            ("loopback.test", "loopback"),
            ("elsewhere.test", "elsewhere"),
            ("white.test", "white-list"),
            ("depth.test", "depth"),
            ("excluded.test", "excluded"),
            ("subnet.test", "subnet"),
        ])
    );
    let proxy = common::start_with(&trusting_loopback(), &dynamic, &[("echo", echo.url())]).await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "loopback.test", "/", "echo").await;

    let reply = get(&proxy, &client, "elsewhere.test", "/").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), "Not Found");
    assert_eq!(get(&proxy, &client, "white.test", "/").await.status, 403);

    let with_xff =
        |host: &str, xff: &str| send(&proxy, Method::GET, host, "/").header("x-forwarded-for", xff);
    // depth 2: the second address from the right of the header as the client sent it (the
    // peer is appended only when the request leaves).
    let reply = client
        .send(with_xff("depth.test", "198.51.100.9, 10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let report = reply.echo().unwrap();
    assert_eq!(
        report.header("x-forwarded-for"),
        Some("198.51.100.9, 10.0.0.1, 127.0.0.1")
    );
    let reply = client
        .send(with_xff("depth.test", "10.0.0.1, 198.51.100.9"))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.text(), "Forbidden");
    let reply = client
        .send(with_xff("depth.test", "198.51.100.9"))
        .await
        .unwrap();
    assert_eq!(reply.status, 403, "too few addresses");
    assert_eq!(get(&proxy, &client, "depth.test", "/").await.status, 403);

    // excludedIPs: the right-most address that is not excluded.
    let reply = client
        .send(with_xff(
            "excluded.test",
            "1.1.1.1, 203.0.113.7, 10.2.3.4,127.0.0.1",
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let reply = client
        .send(with_xff("excluded.test", "203.0.113.7, 1.1.1.1"))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);

    let reply = client
        .send(with_xff("subnet.test", "2001:db8:1:2:aaaa::1"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "masked to its /64");
    let reply = client
        .send(with_xff("subnet.test", "2001:db8:1:3::1"))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
}

/// `htpasswd -nb<flag> user password`, the `user:hash` line.
fn htpasswd(flag: &str, user: &str, password: &str) -> String {
    let out = std::process::Command::new("htpasswd")
        .args([&format!("-nb{flag}"), user, password])
        .output()
        .expect("htpasswd runs");
    assert!(out.status.success(), "htpasswd failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 by hand, to keep the tests free of an encoding crate.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

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
    let ha1 = |user: &str, realm: &str, password: &str| {
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("printf %s '{user}:{realm}:{password}' | md5sum"),
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_string()
    };
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
}

/// A backend that answers every request without a Content-Type: `<html>` for paths with
/// `html`, PNG bytes for `png`, a typed JSON answer for `typed`, and text otherwise.
struct UntypedBackend {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UntypedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn untyped_backend() -> UntypedBackend {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let (typed, body): (bool, Vec<u8>) = if path.contains("html") {
                        (false, b"  <HTML><body>hi</body></HTML>".to_vec())
                    } else if path.contains("png") {
                        (false, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())
                    } else if path.contains("typed") {
                        (true, b"{}".to_vec())
                    } else {
                        (false, b"plain words".to_vec())
                    };
                    let content_type = if typed {
                        "Content-Type: application/json\r\n"
                    } else {
                        ""
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\n{content_type}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    UntypedBackend { url, task }
}

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
        SERVICE.trim_start_matches("\n  services:\n")
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

/// Go's `url.QueryUnescape`.
fn query_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A CA, a client certificate it signed with every field the info header can carry, and a
/// server certificate; all written as PEM files into `dir`. Returns the client's DER.
fn mtls_files(dir: &std::path::Path) -> Vec<u8> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType, SerialNumber,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.distinguished_name
        .push(DnType::OrganizationName, "Viaduct CA");
    ca.distinguished_name
        .push(DnType::CommonName, "test client CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
    let dn = &mut params.distinguished_name;
    dn.push(
        DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
        "example",
    );
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::StateOrProvinceName, "Rhone");
    dn.push(DnType::LocalityName, "Lyon");
    dn.push(DnType::OrganizationName, "Viaduct");
    dn.push(DnType::OrganizationalUnitName, "Tests");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-42");
    dn.push(DnType::CommonName, "client.test");
    params.subject_alt_names.extend([
        SanType::Rfc822Name("me@client.test".try_into().unwrap()),
        SanType::IpAddress("127.0.0.9".parse().unwrap()),
        SanType::URI("spiffe://client/test".try_into().unwrap()),
    ]);
    params.serial_number = Some(SerialNumber::from(vec![0x01, 0x02, 0x03]));
    params.not_before = rcgen::date_time_ymd(2024, 1, 2);
    params.not_after = rcgen::date_time_ymd(2034, 1, 2);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();

    let server = rcgen::generate_simple_self_signed(vec!["secure.test".to_string()]).unwrap();
    let files = [
        ("ca.pem", ca_cert.pem()),
        ("client.pem", client.pem()),
        ("client.key", key.serialize_pem()),
        ("server.pem", server.cert.pem()),
        ("server.key", server.signing_key.serialize_pem()),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    client.der().to_vec()
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

/// What the test authentication server received.
#[derive(Debug, Clone)]
struct AuthSeen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl AuthSeen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A small HTTP/1.1 authentication server deciding by `X-Forwarded-Uri`: `/deny…` gets a
/// 401, `/redirect…` a 302 to a relative URL, anything else a 200 with user headers and
/// cookies.
struct AuthServer {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<AuthSeen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthServer {
    fn last(&self) -> AuthSeen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the auth server was called")
    }
}

async fn auth_server() -> AuthServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let mut lines = head.split("\r\n");
                    let mut request_line = lines.next().unwrap_or("").split(' ');
                    let method = request_line.next().unwrap_or("").to_string();
                    let target = request_line.next().unwrap_or("").to_string();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..length).collect();
                    let seen = AuthSeen {
                        method,
                        target,
                        headers,
                        body,
                    };
                    let uri = seen.header("x-forwarded-uri").unwrap_or("").to_string();
                    record.lock().unwrap().push(seen);
                    let response = if uri.starts_with("/deny") {
                        let body = "denied by auth";
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"auth\"\r\nX-Auth-Extra: 1\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else if uri.starts_with("/redirect") {
                        "HTTP/1.1 302 Found\r\nLocation: /login?from=x\r\nContent-Length: 0\r\n\r\n"
                            .to_string()
                    } else {
                        "HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Role: admin\r\nX-Auth-Ignored: no\r\nSet-Cookie: session=abc; Path=/\r\nSet-Cookie: other=1\r\nContent-Length: 0\r\n\r\n".to_string()
                    };
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    AuthServer { addr, seen, task }
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
{SERVICE}"#,
        routers(&[
            ("auth.test", "auth"),
            ("body.test", "auth-body"),
            ("preserve.test", "auth-preserve"),
            ("trust.test", "auth-trust"),
            ("down.test", "auth-down"),
        ])
    );
    let vars = [
        ("echo", echo.url()),
        ("auth", auth.addr.to_string()),
        ("closed", closed.to_string()),
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
}
