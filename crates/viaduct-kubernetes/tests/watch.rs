//! The client and the provider against a small local API server that lists and streams
//! watches (chunked newline-delimited JSON, as kube-apiserver does), including a `410`
//! ERROR event, a broken stream and an overlong line.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use viaduct_config::static_config::KubernetesIngressProvider as Options;
use viaduct_kubernetes::{ClientOptions, KubeClient, KubeError, KubernetesIngressProvider};
use viaduct_providers::ProviderMessage;

/// What the fake server answers.
enum Reply {
    Json(u16, Value),
    /// A watch: these lines (after their delays), then the end.
    Stream(Vec<(u64, String)>, End),
}

enum End {
    /// Keep the stream open (until the test ends).
    Hold,
    /// Cut the connection in the middle of a chunk.
    Abort,
}

type Handler = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

/// Serves `handler(path_and_query_without_watch_params, nth_request_to_that_path)`.
struct FakeApi {
    address: String,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApi {
    async fn start(handler: Handler) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counts = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let counts = counts.clone();
                tokio::spawn(async move { serve(socket, handler, counts).await });
            }
        });
        FakeApi {
            address,
            requests,
            task,
        }
    }

    fn count(&self, key: &str) -> usize {
        self.requests.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut socket: TcpStream,
    handler: Handler,
    counts: Arc<Mutex<HashMap<String, usize>>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split(' ').nth(1).unwrap_or("").to_string();
    let watching = target.contains("watch=true");
    let path = target.split('?').next().unwrap_or("").to_string();
    let key = format!("{}{path}", if watching { "WATCH " } else { "LIST " });
    let nth = {
        let mut counts = counts.lock().unwrap();
        let n = counts.entry(key.clone()).or_default();
        *n += 1;
        *n
    };
    match handler(&key, nth) {
        Reply::Json(status, body) => {
            let body = body.to_string();
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
        Reply::Stream(lines, end) => {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            for (delay, line) in lines {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let chunk = format!("{:x}\r\n{line}\n\r\n", line.len() + 1);
                if socket.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            match end {
                End::Hold => tokio::time::sleep(Duration::from_secs(60)).await,
                End::Abort => {
                    let _ = socket.write_all(b"40\r\n{\"type\":\"ADD").await;
                }
            }
        }
    }
}

fn list(items: Vec<Value>, version: &str) -> Reply {
    Reply::Json(
        200,
        json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": version}, "items": items}),
    )
}

fn whoami_objects() -> (Value, Value) {
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "whoami", "namespace": "default", "resourceVersion": "10"},
        "spec": {"ports": [{"name": "web", "port": 80}]}});
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "whoami-abc", "namespace": "default", "resourceVersion": "11",
                     "labels": {"kubernetes.io/service-name": "whoami"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true}}],
        "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]});
    (service, slice)
}

fn ingress(host: &str, version: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "app", "namespace": "default", "resourceVersion": version},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "whoami", "port": {"number": 80}}}}]}}]}})
}

fn event(kind: &str, object: &Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

/// The rules of the provider's routers, from its next message.
async fn next_rules(rx: &mut mpsc::Receiver<ProviderMessage>) -> Vec<String> {
    let message = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a configuration within 10s")
        .unwrap();
    assert_eq!(message.provider, "kubernetes");
    let http = message.config.http.clone().unwrap_or_default();
    http.routers.values().map(|r| r.rule.clone()).collect()
}

fn provider(api: &FakeApi) -> KubernetesIngressProvider {
    KubernetesIngressProvider::new(&Options {
        endpoint: api.address.clone(),
        ..Options::default()
    })
    .unwrap()
}

#[tokio::test]
async fn watch_events_added_modified_deleted_update_the_configuration() {
    let (service, slice) = whoami_objects();
    let handler: Handler = Arc::new(move |key, _nth| match key {
        "LIST /apis/networking.k8s.io/v1/ingresses" => {
            list(vec![ingress("a.example.com", "20")], "20")
        }
        "LIST /api/v1/services" => list(vec![service.clone()], "20"),
        "LIST /apis/discovery.k8s.io/v1/endpointslices" => list(vec![slice.clone()], "20"),
        "WATCH /apis/networking.k8s.io/v1/ingresses" => Reply::Stream(
            vec![
                (300, event("MODIFIED", &ingress("b.example.com", "21"))),
                (
                    300,
                    event("BOOKMARK", &json!({"metadata": {"resourceVersion": "22"}})),
                ),
                (
                    0,
                    event("ADDED", &{
                        let mut second = ingress("c.example.com", "23");
                        second["metadata"]["name"] = json!("second");
                        second
                    }),
                ),
                (300, event("DELETED", &ingress("b.example.com", "24"))),
            ],
            End::Hold,
        ),
        k if k.starts_with("LIST ") => list(vec![], "20"),
        _ => Reply::Stream(vec![], End::Hold),
    });
    let api = FakeApi::start(handler).await;
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(provider(&api).run(tx));
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`a.example.com`) && PathPrefix(`/`)"]
    );
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`b.example.com`) && PathPrefix(`/`)"]
    );
    assert_eq!(
        next_rules(&mut rx).await,
        [
            "Host(`b.example.com`) && PathPrefix(`/`)",
            "Host(`c.example.com`) && PathPrefix(`/`)"
        ]
    );
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`c.example.com`) && PathPrefix(`/`)"]
    );
    // Only the collections were listed once each: events came through the watch.
    assert_eq!(api.count("LIST /apis/networking.k8s.io/v1/ingresses"), 1);
    task.abort();
}

#[tokio::test]
async fn a_410_and_a_broken_stream_make_the_provider_list_again() {
    let (service, slice) = whoami_objects();
    let handler: Handler = Arc::new(move |key, nth| match key {
        "LIST /apis/networking.k8s.io/v1/ingresses" => {
            let host = format!("list{nth}.example.com");
            list(vec![ingress(&host, &nth.to_string())], &nth.to_string())
        }
        "LIST /api/v1/services" => list(vec![service.clone()], "20"),
        "LIST /apis/discovery.k8s.io/v1/endpointslices" => list(vec![slice.clone()], "20"),
        "WATCH /apis/networking.k8s.io/v1/ingresses" => match nth {
            1 => Reply::Stream(
                vec![(
                    200,
                    event(
                        "ERROR",
                        &json!({"kind": "Status", "code": 410, "reason": "Expired",
                    "message": "too old resource version: 1 (5)"}),
                    ),
                )],
                End::Hold,
            ),
            2 => Reply::Stream(vec![], End::Abort),
            _ => Reply::Stream(vec![], End::Hold),
        },
        k if k.starts_with("LIST ") => list(vec![], "20"),
        _ => Reply::Stream(vec![], End::Hold),
    });
    let api = FakeApi::start(handler).await;
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(provider(&api).run(tx));
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`list1.example.com`) && PathPrefix(`/`)"]
    );
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`list2.example.com`) && PathPrefix(`/`)"]
    );
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`list3.example.com`) && PathPrefix(`/`)"]
    );
    task.abort();
}

#[tokio::test]
async fn an_unreachable_api_keeps_the_last_configuration() {
    let (service, slice) = whoami_objects();
    let handler: Handler = Arc::new(move |key, nth| match key {
        "LIST /apis/networking.k8s.io/v1/ingresses" if nth == 1 => {
            list(vec![ingress("a.example.com", "20")], "20")
        }
        "LIST /api/v1/services" if nth == 1 => list(vec![service.clone()], "20"),
        "LIST /apis/discovery.k8s.io/v1/endpointslices" if nth == 1 => {
            list(vec![slice.clone()], "20")
        }
        k if k.starts_with("LIST ") && nth == 1 => list(vec![], "20"),
        k if k.starts_with("LIST ") => {
            Reply::Json(503, json!({"kind": "Status", "message": "down"}))
        }
        _ => Reply::Stream(vec![], End::Abort),
    });
    let api = FakeApi::start(handler).await;
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(provider(&api).run(tx));
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`a.example.com`) && PathPrefix(`/`)"]
    );
    // Every watch breaks and every new list fails: nothing new is sent.
    assert!(tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .is_err());
    assert!(api.count("LIST /apis/networking.k8s.io/v1/ingresses") >= 2);
    task.abort();
}

#[tokio::test]
async fn an_overlong_event_line_is_an_error_not_an_allocation() {
    let big = "x".repeat(5 << 20);
    let handler: Handler =
        Arc::new(move |_key, _nth| Reply::Stream(vec![(0, big.clone())], End::Hold));
    let api = FakeApi::start(handler).await;
    let client = KubeClient::from_options(&ClientOptions {
        endpoint: api.address.clone(),
        ..ClientOptions::default()
    })
    .unwrap();
    let mut stream = client.watch("/api/v1/services", &[], "1").await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap();
    assert!(
        matches!(result, Err(KubeError::TooLarge { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn lists_send_the_label_selector_and_the_token() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let record = seen.clone();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0u8; 4096];
        let n = socket.read(&mut buffer).await.unwrap();
        record
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&buffer[..n]).to_string());
        let body = r#"{"kind":"IngressList","metadata":{"resourceVersion":"77"},"items":[]}"#;
        let _ = socket
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
    });
    let client = KubeClient::from_options(&ClientOptions {
        endpoint: address,
        token: "s3cret".into(),
        ..ClientOptions::default()
    })
    .unwrap();
    let listed = client
        .list(
            "/apis/networking.k8s.io/v1/namespaces/apps/ingresses",
            &[("labelSelector", "app=web,tier!=db")],
        )
        .await
        .unwrap();
    assert_eq!(listed.resource_version, "77");
    server.await.unwrap();
    let request = seen.lock().unwrap()[0].clone();
    assert!(request.starts_with(
        "GET /apis/networking.k8s.io/v1/namespaces/apps/ingresses?labelSelector=app%3Dweb%2Ctier%21%3Ddb HTTP/1.1"
    ), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer s3cret"),
        "{request}"
    );
}

#[tokio::test]
async fn namespaces_are_watched_one_by_one_and_cluster_scope_can_be_skipped() {
    let handler: Handler = Arc::new(move |key, _nth| {
        if key.starts_with("LIST ") {
            list(vec![], "5")
        } else {
            Reply::Stream(vec![], End::Hold)
        }
    });
    let api = FakeApi::start(handler).await;
    let provider = KubernetesIngressProvider::new(&Options {
        endpoint: api.address.clone(),
        namespaces: vec!["apps".into(), "web".into()],
        disable_cluster_scope_resources: true,
        ..Options::default()
    })
    .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(provider.run(tx));
    // Every collection listed (an empty configuration is sent once all are).
    assert!(next_rules(&mut rx).await.is_empty());
    for namespace in ["apps", "web"] {
        for collection in [
            "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            "/api/v1/namespaces/{ns}/services",
            "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
            "/api/v1/namespaces/{ns}/secrets",
        ] {
            let key = format!("LIST {}", collection.replace("{ns}", namespace));
            assert_eq!(api.count(&key), 1, "{key}");
        }
    }
    assert_eq!(
        api.count("LIST /apis/networking.k8s.io/v1/ingressclasses"),
        0
    );
    assert_eq!(api.count("LIST /apis/networking.k8s.io/v1/ingresses"), 0);
    task.abort();
}

#[tokio::test]
async fn a_burst_within_the_throttle_is_one_configuration() {
    let (service, slice) = whoami_objects();
    let handler: Handler = Arc::new(move |key, _nth| match key {
        "LIST /apis/networking.k8s.io/v1/ingresses" => {
            list(vec![ingress("h0.example.com", "20")], "20")
        }
        "LIST /api/v1/services" => list(vec![service.clone()], "20"),
        "LIST /apis/discovery.k8s.io/v1/endpointslices" => list(vec![slice.clone()], "20"),
        "WATCH /apis/networking.k8s.io/v1/ingresses" => Reply::Stream(
            (1..=5)
                .map(|n| {
                    (
                        20,
                        event(
                            "MODIFIED",
                            &ingress(&format!("h{n}.example.com"), &format!("2{n}")),
                        ),
                    )
                })
                .collect(),
            End::Hold,
        ),
        k if k.starts_with("LIST ") => list(vec![], "20"),
        _ => Reply::Stream(vec![], End::Hold),
    });
    let api = FakeApi::start(handler).await;
    let provider = KubernetesIngressProvider::new(&Options {
        endpoint: api.address.clone(),
        throttle_duration: viaduct_config::GoDuration::from_millis(600),
        ..Options::default()
    })
    .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(provider.run(tx));
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`h0.example.com`) && PathPrefix(`/`)"]
    );
    assert_eq!(
        next_rules(&mut rx).await,
        ["Host(`h5.example.com`) && PathPrefix(`/`)"]
    );
    assert!(tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .is_err());
    task.abort();
}
