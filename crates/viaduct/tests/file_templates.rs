//! Dynamic files are Go templates, rendered before they are parsed, as Traefik renders them:
//! sprig functions, `env`, and routers generated with `range`.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;

use common::{get, start, wait_backend};
use viaduct_testkit::{EchoBackend, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_templated_file_generates_its_routers() {
    // Inherited by the proxy process, whichever proxy it is.
    std::env::set_var("VIADUCT_E2E_TEMPLATE_DOMAIN", "template.test");
    let backend = EchoBackend::start("templated").await.unwrap();
    let other = EchoBackend::start("other").await.unwrap();
    let proxy = start(
        r#"
{{- /* Two routers from one block, the domain from the environment. */ -}}
{{ $domain := env "VIADUCT_E2E_TEMPLATE_DOMAIN" | default "unset.test" }}
http:
  routers:
{{- range $i, $name := list "alpha" "beta" }}
    {{ $name }}:
      rule: "Host(`{{ $name }}.{{ $domain }}`)"
      service: svc
      priority: {{ add 10 $i }}
{{- end }}
    {{ "GAMMA" | lower }}:
      rule: {{ printf "Host(`%s.%s`)" "gamma" $domain | quote }}
      service: {{ if eq (len $domain) 0 }}svc{{ else }}other{{ end }}
  services:
    svc:
      loadBalancer:
        servers:
          - url: "{{be}}"
    other:
      loadBalancer:
        servers:
          - url: "{{other}}"
"#,
        &[("be", backend.url()), ("other", other.url())],
    )
    .await;
    let client = HttpClient::http1();
    wait_backend(&proxy, &client, "alpha.template.test", "/", "templated").await;

    assert_eq!(
        get(&proxy, &client, "beta.template.test", "/")
            .await
            .backend(),
        Some("templated")
    );
    assert_eq!(
        get(&proxy, &client, "gamma.template.test", "/")
            .await
            .backend(),
        Some("other")
    );
    assert_eq!(
        get(&proxy, &client, "unset.test", "/").await.status,
        404,
        "the environment variable was used, not the default"
    );
}

/// Each expression's output, as Go's text/template with sprig (and Traefik's additions)
/// renders it; the test passes against Traefik as well.
const EXPRESSIONS: &[(&str, &str)] = &[
    (
        r#"printf "%05.1f|%-4s|%x|%q|%v" 3.14159 "ab" 255 "q" true"#,
        r#"003.1|ab  |ff|"q"|true"#,
    ),
    (r#"list 1 "a" 2.5"#, "[1 a 2.5]"),
    (r#"dict "b" 1 "a" 2"#, "map[a:2 b:1]"),
    (r#"print 1 2 "x" 3"#, "1 2x3"),
    ("1e3", "1000"),
    ("0x10", "16"),
    ("'a'", "97"),
    (r#"quote "a" 1"#, r#""a" "1""#),
    (r#"title "hello world""#, "Hello World"),
    (r#"normalize "a_b.c d""#, "a-b-c-d"),
    ("seq 5", "1 2 3 4 5"),
    ("untilStep 1 10 3", "[1 4 7]"),
    (r#"trunc -3 "abcdef""#, "def"),
    (r#"substr 1 3 "abcdef""#, "bc"),
    (r#"join "," (split "a:b:c" ":")"#, "a,b,c"),
    (r#"len (dict "a" 1)"#, "1"),
    ("(dict).missing", "<no value>"),
    (
        r#"toJson (dict "a" (list 1 "b" nil))"#,
        r#"{"a":[1,"b",null]}"#,
    ),
    (r#"nospace "a b c""#, "abc"),
    (r#"trimAll "-" "--a--""#, "a"),
    (r#"repeat 3 "ab""#, "ababab"),
    ("div 7 2", "3"),
    ("mod -7 3", "-1"),
    ("sub 1 5", "-4"),
    ("max 1 9 3", "9"),
    ("min 4 2 8", "2"),
    (r#"b64dec "aGk=""#, "hi"),
    (r#"ternary "y" "n" false"#, "n"),
    (r#"coalesce "" 0 "z""#, "z"),
    ("has 2 (list 1 2)", "true"),
    (r#"keys (dict "b" 1 "a" 2) | sortAlpha"#, "[a b]"),
    (r#"float64 "2.50""#, "2.5"),
    (r#"atoi "42""#, "42"),
    (r#"int "12abc""#, "0"),
    (r#"and 1 "x" 2"#, "2"),
    (r#"or 0 "" "y""#, "y"),
    (r#"index (list "a" "b") 1"#, "b"),
    ("slice (list 1 2 3) 1", "[2 3]"),
    (r#"lt 1 2"#, "true"),
    (r#"eq "a" "b" "a""#, "true"),
    (r#"urlquery "a b&c""#, "a+b%26c"),
    (r#"upper "abc" | replace "B" "-""#, "A-C"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_functions_render_as_go_renders_them() {
    let backend = EchoBackend::start("fns").await.unwrap();
    let mut headers = String::new();
    for (i, (expression, _)) in EXPRESSIONS.iter().enumerate() {
        // Single-quoted YAML: the rendered text may hold double quotes.
        headers.push_str(&format!("          X-T{i}: '{{{{ {expression} }}}}'\n"));
    }
    let dynamic = format!(
        r#"
http:
  routers:
    r:
      rule: "Host(`fns.test`)"
      service: svc
      middlewares: [values]
  middlewares:
    values:
      headers:
        customRequestHeaders:
{headers}  services:
    svc:
      loadBalancer:
        servers:
          - url: "{{{{be}}}}"
"#
    );
    let proxy = start(&dynamic, &[("be", backend.url())]).await;
    let client = HttpClient::http1();
    let reply = wait_backend(&proxy, &client, "fns.test", "/", "fns").await;
    let echo = reply.echo().unwrap();

    let mut wrong = Vec::new();
    for (i, (expression, expected)) in EXPRESSIONS.iter().enumerate() {
        let name = format!("x-t{i}");
        let got = echo
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str());
        if got != Some(*expected) {
            wrong.push(format!(
                "{{{{ {expression} }}}}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
