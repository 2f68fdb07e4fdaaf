//! Middlewares, part A, end to end: headers, redirects, path rewriting, IP allow lists,
//! authentication, content type, encoded characters, client certificates, forward auth.
//! Each test passes against Traefik too (`VIADUCT_E2E_PROXY=traefik`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

#[path = "middlewares_a/auth.rs"]
mod auth;
mod common;
#[path = "middlewares_a/content.rs"]
mod content;
#[path = "middlewares_a/support.rs"]
mod support;

use common::ECHO_SERVICE as SERVICE;
use common::{echoed, get, start, start_echo, wait_backend};
use http::Method;
use support::{auth_server, base64, basic, htpasswd, mtls_files, query_unescape, untyped_backend};
use viaduct_testkit::{EchoBackend, HttpClient, RequestSpec};

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
    no-xff:
      headers:
        customRequestHeaders:
          X-Forwarded-For: ""
    hosts:
      headers:
        allowedHosts: ["good.test"]
        hostsProxyHeaders: ["X-Custom-Host"]
        customResponseHeaders:
          X-Hosts: "checked"
{SERVICE}"#,
        routers(&[
            ("custom.test", "custom"),
            ("forced.test", "forced"),
            ("ssl.test", "proxied-ssl"),
            ("cors.test", "cors"),
            ("good.test", "hosts"),
            ("bad.test", "hosts"),
            ("noxff.test", "no-xff"),
        ])
    );
    let (proxy, client) = start_echo(&dynamic, &echo, "forced.test").await;

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
    assert_eq!(
        reply.header("x-hosts"),
        Some("checked"),
        "custom headers on the refusal too"
    );
    let spec = send(&proxy, Method::GET, "bad.test", "/").header("x-custom-host", "good.test");
    assert_eq!(client.send(spec).await.unwrap().status, 200);

    // An empty X-Forwarded-For also keeps the proxy from appending the peer to it.
    let report = echoed(&proxy, &client, "noxff.test", "/").await;
    assert_eq!(report.header("x-forwarded-for"), None);
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
    let (proxy, client) = start_echo(&dynamic, &echo, "c.test").await;

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

    let report = echoed(&proxy, &client, "regex.test", "/foo/a/b?y=2").await;
    assert_eq!(report.uri, "/bar/a/b?y=2");
    assert_eq!(report.header("x-replaced-path"), Some("/foo/a/b"));
    let report = echoed(&proxy, &client, "regex.test", "/other").await;
    assert_eq!(report.uri, "/other");
    assert_eq!(report.header("x-replaced-path"), None);

    let report = echoed(&proxy, &client, "strip.test", "/products/abc12/item?z").await;
    assert_eq!(report.uri, "/item?z");
    assert_eq!(report.header("x-forwarded-prefix"), Some("/products/abc12"));
    let report = echoed(&proxy, &client, "strip.test", "/products/abc").await;
    assert_eq!(report.uri, "/");
    let report = echoed(&proxy, &client, "strip.test", "/x/products/abc").await;
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
